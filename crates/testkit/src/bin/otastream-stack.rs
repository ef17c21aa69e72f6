//! `otastream-stack`: starts a throw-away PostgreSQL + SeaweedFS [`Stack`] for benchmarks
//! (`benches/fleet.sh`), prints the environment and `otastream serve` flags that select it as
//! shell assignments, and stops both (by PID) when its standard input closes.
//!
//! ```text
//! STACK_DATABASE_URL='postgres://...'
//! STACK_OBJECT_STORE='s3://otastream-objects'
//! STACK_S3_ENDPOINT='http://127.0.0.1:PORT'
//! STACK_AWS_ACCESS_KEY_ID='...'
//! STACK_AWS_SECRET_ACCESS_KEY='...'
//! STACK_AWS_REGION='us-east-1'
//! STACK_READY=1
//! ```

use std::io::{Read, Write};

use otastream_testkit::{STACK_BUCKET, Stack};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = Stack::start()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "STACK_DATABASE_URL='{}'", stack.database_url)?;
    writeln!(out, "STACK_OBJECT_STORE='s3://{STACK_BUCKET}'")?;
    writeln!(out, "STACK_S3_ENDPOINT='{}'", stack.s3.endpoint())?;
    for (name, value) in stack.serve_env() {
        writeln!(out, "STACK_{name}='{value}'")?;
    }
    writeln!(out, "STACK_READY=1")?;
    out.flush()?;
    drop(out);
    // Runs until the caller closes our standard input (or exits); then `stack` stops both.
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
    drop(stack);
    Ok(())
}
