DROP INDEX conflicts_incoming;
ALTER TABLE conflicts DROP COLUMN incoming_seq;
