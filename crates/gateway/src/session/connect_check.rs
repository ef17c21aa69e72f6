//! The checks a CONNECT must pass before it is decoded: protocol name and level, and the connect
//! flags the codec does not police (MQTT 3.1.1 §3.1.2). Sans-IO: the packet's bytes in, a
//! [`Version`] or a [`Refusal`] out.

use rumqttc::mqttbytes::v4::ConnectReturnCode;
use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as V5ConnectReturnCode;

/// The MQTT versions the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// What the client is told before its connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalAnswer {
    /// Nothing: the connection is closed at once.
    Close,
    /// A 3.1.1 CONNACK with this return code (also what an MQTT 3.1 client understands).
    V4(ConnectReturnCode),
    /// An MQTT 5 CONNACK with this reason code.
    V5(V5ConnectReturnCode),
}

/// A CONNECT refused before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// What the client is told.
    pub answer: RefusalAnswer,
    /// Why, for logs.
    pub why: &'static str,
}

const RESERVED_FLAG: u8 = 0x01;
const PASSWORD_FLAG: u8 = 0x40;
const USER_NAME_FLAG: u8 = 0x80;

/// Checks `packet`, the complete bytes of the first packet of a connection (fixed header
/// included), and says which codec decodes it.
///
/// - not a CONNECT, or an unknown protocol name: closed (MQTT-3.1.0-1, MQTT-3.1.2-1);
/// - protocol level other than 4 or 5 (MQTT 3.1's `MQIsdp` level 3 included): a 3.1.1 CONNACK with
///   return code 1, unacceptable protocol version (MQTT-3.1.2-2);
/// - the reserved connect flag set: closed (MQTT-3.1.2-3);
/// - 3.1.1 only: a password without a user name: CONNACK return code 4, bad user name or password
///   (MQTT-3.1.2-22; MQTT 5 allows it).
pub fn check_connect(packet: &[u8]) -> Result<Version, Refusal> {
    let close = |why| Refusal {
        answer: RefusalAnswer::Close,
        why,
    };
    let (&first, rest) = packet.split_first().ok_or(close("empty packet"))?;
    if first != 0x10 {
        return Err(close("first packet was not CONNECT"));
    }
    // The remaining length: 1–4 bytes, the last without its high bit.
    let len_len = rest
        .iter()
        .take(4)
        .position(|b| b & 0x80 == 0)
        .ok_or(close("malformed remaining length"))?;
    let body = &rest[len_len + 1..];
    let truncated = close("truncated CONNECT");
    let name_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or(truncated)?,
        *body.get(1).ok_or(truncated)?,
    ]));
    let name = body.get(2..2 + name_len).ok_or(truncated)?;
    let level = *body.get(2 + name_len).ok_or(truncated)?;
    let flags = *body.get(3 + name_len).ok_or(truncated)?;
    let version = match (name, level) {
        (b"MQTT", 4) => Version::V4,
        (b"MQTT", 5) => Version::V5,
        (b"MQTT", _) | (b"MQIsdp", _) => {
            return Err(Refusal {
                answer: RefusalAnswer::V4(ConnectReturnCode::RefusedProtocolVersion),
                why: "unsupported protocol version",
            });
        }
        _ => return Err(close("unknown protocol name")),
    };
    if flags & RESERVED_FLAG != 0 {
        return Err(close("reserved CONNECT flag set (MQTT-3.1.2-3)"));
    }
    if version == Version::V4 && flags & PASSWORD_FLAG != 0 && flags & USER_NAME_FLAG == 0 {
        return Err(Refusal {
            answer: RefusalAnswer::V4(ConnectReturnCode::BadUserNamePassword),
            why: "password without user name (MQTT-3.1.2-22)",
        });
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CONNECT with protocol `name`, `level` and `flags`, then keep-alive and client id `c`.
    fn connect(name: &[u8], level: u8, flags: u8) -> Vec<u8> {
        let mut body = vec![0, name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, flags, 0, 30, 0, 1, b'c']);
        let mut packet = vec![0x10, body.len() as u8];
        packet.extend_from_slice(&body);
        packet
    }

    #[test]
    fn versions_4_and_5_are_spoken() {
        assert_eq!(check_connect(&connect(b"MQTT", 4, 0x02)), Ok(Version::V4));
        assert_eq!(check_connect(&connect(b"MQTT", 5, 0x02)), Ok(Version::V5));
        // A password without a user name is fine in MQTT 5.
        assert_eq!(check_connect(&connect(b"MQTT", 5, 0x42)), Ok(Version::V5));
        assert_eq!(check_connect(&connect(b"MQTT", 4, 0xc2)), Ok(Version::V4));
    }

    #[test]
    fn other_versions_get_return_code_1() {
        for (name, level) in [
            (&b"MQIsdp"[..], 3),
            (b"MQTT", 3),
            (b"MQTT", 6),
            (b"MQTT", 0),
        ] {
            let refusal = check_connect(&connect(name, level, 0x02)).expect_err("refused");
            assert_eq!(
                refusal.answer,
                RefusalAnswer::V4(ConnectReturnCode::RefusedProtocolVersion),
                "level {level}"
            );
        }
    }

    #[test]
    fn flag_violations_are_refused() {
        for level in [4, 5] {
            let refusal = check_connect(&connect(b"MQTT", level, 0x03)).expect_err("reserved");
            assert_eq!(refusal.answer, RefusalAnswer::Close);
        }
        let refusal = check_connect(&connect(b"MQTT", 4, 0x42)).expect_err("password only");
        assert_eq!(
            refusal.answer,
            RefusalAnswer::V4(ConnectReturnCode::BadUserNamePassword)
        );
    }

    #[test]
    fn garbage_is_closed_never_a_panic() {
        for bytes in [
            &[][..],
            &[0x10],
            &[0x10, 0x80, 0x80, 0x80, 0x80, 0x01],
            &[0x10, 2, 0, 9],
            &[0x30, 2, 0, 0],
            &[0x12, 2, 0, 0],
        ] {
            let refusal = check_connect(bytes).expect_err("refused");
            assert_eq!(refusal.answer, RefusalAnswer::Close, "{bytes:?}");
        }
        assert_eq!(
            check_connect(&connect(b"HTTP", 4, 2)).map_err(|r| r.answer),
            Err(RefusalAnswer::Close)
        );
    }
}
