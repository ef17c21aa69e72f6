-- Device identity as in AWS IoT: device and CA certificates, policies and their versions, policy
-- attachments, thing principals, and account settings (the CA registration code). Records are
-- the store's typed structs serialised into `doc`; `seq` keeps creation and attachment order.
CREATE TABLE device_certificates (
    id     text PRIMARY KEY,
    seq    bigserial UNIQUE,
    ca_id  text,
    doc    jsonb NOT NULL
);
CREATE INDEX device_certificates_by_ca ON device_certificates (ca_id);

CREATE TABLE ca_certificates (
    id   text PRIMARY KEY,
    seq  bigserial UNIQUE,
    doc  jsonb NOT NULL
);

CREATE TABLE policies (
    name  text PRIMARY KEY,
    seq   bigserial UNIQUE,
    doc   jsonb NOT NULL
);

CREATE TABLE policy_versions (
    policy      text NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
    version_id  bigint NOT NULL,
    doc         jsonb NOT NULL,
    PRIMARY KEY (policy, version_id)
);

CREATE TABLE policy_targets (
    policy  text NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
    target  text NOT NULL,
    seq     bigserial UNIQUE,
    PRIMARY KEY (policy, target)
);
CREATE INDEX policy_targets_by_target ON policy_targets (target);

CREATE TABLE thing_principals (
    thing      text NOT NULL REFERENCES things (name) ON DELETE CASCADE,
    principal  text NOT NULL,
    seq        bigserial UNIQUE,
    PRIMARY KEY (thing, principal)
);
CREATE INDEX thing_principals_by_principal ON thing_principals (principal);

CREATE TABLE settings (
    name   text PRIMARY KEY,
    value  text NOT NULL
);
