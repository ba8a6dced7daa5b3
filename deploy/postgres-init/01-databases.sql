-- Run once by the postgres image's entrypoint, on an empty data volume (docker-compose.yml mounts this
-- folder at /docker-entrypoint-initdb.d), as $POSTGRES_USER. $POSTGRES_DB (default `dagster`) already
-- holds Dagster's run, event-log and schedule storage; the warehouse gets its own database on the same
-- server, owned by the same user. Its tables are created by the pipeline on first use.
CREATE DATABASE sigmasight;
