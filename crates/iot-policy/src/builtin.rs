//! The built-in development policy `otastream dev-cert --thing T` attaches: exactly the fixed rule the
//! gateway applied before policies existed, written as an AWS IoT policy.
//!
//! The connection's thing `T` (the attached thing named like the client id) may connect with client
//! id `T`; publish, receive and subscribe under its own reserved prefix `$aws/things/T/` (something
//! after the slash); use every ordinary topic and filter (not starting with `$`, so `#` and `+/x`
//! too); and no other `$` topic (another thing's, `$SYS`, `$aws/rules`, ...).

/// The name the built-in policy is stored under.
pub const DEV_THING_POLICY_NAME: &str = "otastream-dev-thing";

/// The built-in policy document (any region, any account).
pub const DEV_THING_POLICY_DOCUMENT: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ConnectAsTheThing",
      "Effect": "Allow",
      "Action": "iot:Connect",
      "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"
    },
    {
      "Sid": "OwnReservedTopics",
      "Effect": "Allow",
      "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
      "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/?*"
    },
    {
      "Sid": "OwnReservedFilters",
      "Effect": "Allow",
      "Action": "iot:Subscribe",
      "Resource": "arn:aws:iot:*:*:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/?*"
    },
    {
      "Sid": "OrdinaryTopics",
      "Effect": "Allow",
      "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
      "NotResource": "arn:aws:iot:*:*:topic/$*"
    },
    {
      "Sid": "OrdinaryFilters",
      "Effect": "Allow",
      "Action": "iot:Subscribe",
      "NotResource": "arn:aws:iot:*:*:topicfilter/$*"
    }
  ]
}"#;
