//! [`Stack`]: the production backend's components together, as `otastream serve` uses them: one
//! PostgreSQL database and one SeaweedFS bucket, with the flags and environment that point a
//! server at them.

use crate::{Error, Postgres, SeaweedFs};

/// The bucket a [`Stack`] keeps object bytes in.
pub const STACK_BUCKET: &str = "otastream-objects";
/// The database a [`Stack`] keeps metadata in.
pub const STACK_DATABASE: &str = "otastream";

/// PostgreSQL with database [`STACK_DATABASE`] and SeaweedFS with bucket [`STACK_BUCKET`].
/// Both stop (by PID) when the stack is dropped; stop whatever uses them first.
pub struct Stack {
    /// The metadata server (pause/resume it for outage tests).
    pub pg: Postgres,
    /// The object server (pause/resume it for outage tests).
    pub s3: SeaweedFs,
    /// `postgres://…/otastream`.
    pub database_url: String,
}

impl Stack {
    /// Starts both components and creates the database and the bucket.
    pub fn start() -> Result<Self, Error> {
        let pg = Postgres::start()?;
        let database_url = pg.create_database(STACK_DATABASE)?;
        let s3 = SeaweedFs::start()?;
        s3.create_bucket(STACK_BUCKET)?;
        Ok(Self {
            pg,
            s3,
            database_url,
        })
    }

    /// The `otastream serve` flags that select this backend.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--database-url".into(),
            self.database_url.clone(),
            "--object-store".into(),
            format!("s3://{STACK_BUCKET}"),
            "--s3-endpoint".into(),
            self.s3.endpoint(),
        ]
    }

    /// The environment `otastream serve` reads the object store's credentials from.
    pub fn serve_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.s3.access_key_id().to_owned()),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.s3.secret_access_key().to_owned(),
            ),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }
}
