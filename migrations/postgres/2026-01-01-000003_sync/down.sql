DROP TABLE rejections;
DROP TABLE conflicts;
DROP TABLE record_index;
DROP TABLE grid_clock;
