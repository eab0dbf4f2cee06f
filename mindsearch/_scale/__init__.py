"""Several API replicas and workers on one Redis: runs as queued jobs, their events in Redis Streams."""
