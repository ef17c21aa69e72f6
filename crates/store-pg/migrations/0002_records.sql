-- Streams and the control-plane records. Records are the store's typed structs, serialised with
-- serde into `doc`; `seq` keeps creation order (an upsert keeps the position of the row it replaces).
CREATE TABLE streams (
    id           text PRIMARY KEY,
    seq          bigserial UNIQUE,
    version      bigint NOT NULL,
    description  text,
    role_arn     text,
    files        jsonb NOT NULL,
    created_ms   bigint NOT NULL,
    updated_ms   bigint NOT NULL
);

CREATE TABLE things (
    name  text PRIMARY KEY,
    seq   bigserial UNIQUE,
    doc   jsonb NOT NULL
);

CREATE TABLE thing_groups (
    name  text PRIMARY KEY,
    seq   bigserial UNIQUE,
    doc   jsonb NOT NULL
);

CREATE TABLE thing_group_members (
    group_name  text NOT NULL REFERENCES thing_groups (name) ON DELETE CASCADE,
    thing_name  text NOT NULL REFERENCES things (name) ON DELETE CASCADE,
    seq         bigserial UNIQUE,
    PRIMARY KEY (group_name, thing_name)
);

CREATE TABLE jobs (
    job_id  text PRIMARY KEY,
    seq     bigserial UNIQUE,
    doc     jsonb NOT NULL
);

CREATE TABLE job_executions (
    job_id      text NOT NULL,
    thing_name  text NOT NULL,
    seq         bigserial UNIQUE,
    doc         jsonb NOT NULL,
    PRIMARY KEY (job_id, thing_name)
);

CREATE TABLE ota_updates (
    id   text PRIMARY KEY,
    seq  bigserial UNIQUE,
    doc  jsonb NOT NULL
);

CREATE TABLE signing_profiles (
    name  text PRIMARY KEY,
    seq   bigserial UNIQUE,
    doc   jsonb NOT NULL
);

CREATE TABLE signing_jobs (
    id   text PRIMARY KEY,
    seq  bigserial UNIQUE,
    doc  jsonb NOT NULL
);

CREATE TABLE certificates (
    id   text PRIMARY KEY,
    seq  bigserial UNIQUE,
    doc  jsonb NOT NULL
);
