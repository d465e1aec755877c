DROP TABLE attachments;
DROP TABLE hazard_actions;
DROP TABLE hazards;
DROP TABLE needs;
DROP TABLE visits;
DROP TABLE track_points;
DROP TABLE patrols;
DROP TABLE households;
