DROP TABLE audit_log;
DROP TABLE login_failures;
DROP TABLE refresh_tokens;
DROP TABLE devices;
DROP TABLE user_grids;
DROP TABLE users;
DROP TABLE areas;
