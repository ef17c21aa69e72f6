//! The components start, answer, restart and stop; a dropped component leaves no process behind.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};

use otastream_testkit::{Postgres, SeaweedFs};

fn listening(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[test]
fn postgres_starts_creates_a_database_pauses_resumes_and_stops() {
    let mut pg = Postgres::start().expect("start PostgreSQL");
    let url = pg.create_database("testkit_db").expect("create database");
    assert!(url.ends_with("/testkit_db"), "{url}");
    assert!(
        pg.create_database("testkit_db").is_err(),
        "a duplicate database is an error"
    );
    assert!(pg.create_database("Bad-Name").is_err());
    let port = pg.port();
    assert!(listening(port));
    pg.pause();
    assert!(!listening(port), "paused: nothing listens");
    pg.resume().expect("resume");
    assert!(listening(port));
    pg.kill();
    pg.resume().expect("recover after SIGKILL");
    // The database created before the restarts is still there.
    assert!(pg.create_database("testkit_db").is_err());
    drop(pg);
    assert!(!listening(port), "dropped: the server is gone");
}

#[test]
fn seaweedfs_starts_creates_a_bucket_and_stops() {
    let s3 = SeaweedFs::start().expect("start SeaweedFS");
    s3.create_bucket("testkit-bucket").expect("create bucket");
    assert!(
        s3.create_bucket("ab").is_err(),
        "bucket names need 3+ characters"
    );
    let endpoint = s3.endpoint();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(listening(port));
    // The server checks signatures: an anonymous request is refused, not served.
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    stream
        .write_all(b"GET /testkit-bucket/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(
        answer.starts_with("HTTP/1.0 403") || answer.starts_with("HTTP/1.1 403"),
        "{answer}"
    );
    drop(s3);
    assert!(!listening(port), "dropped: the server is gone");
}
