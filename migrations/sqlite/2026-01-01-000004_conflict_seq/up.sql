-- The push seq of the mutation that met the conflict, so that a phone which lost the push
-- response and sends the mutation again learns its conflicts from the `duplicate` answer.
-- NULL for conflicts not caused by a device's push stream.
ALTER TABLE conflicts ADD COLUMN incoming_seq BIGINT;
CREATE INDEX conflicts_incoming ON conflicts (incoming_device, incoming_seq);
