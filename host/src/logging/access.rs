//! The access log: one line per request, in the log file of the app that
//! answered (`host.log` when none did), and on the console only when asked
//! (`--access-log -`): a busy host would otherwise write gigabytes to its
//! standard error (under systemd, into the journal), as gunicorn and nginx
//! do not.
//!
//! Through `tracing`'s formatter an access line cost a fifth of a small
//! request (the line formatted into a `String`, the filter asked, the event
//! formatted again with its timestamp and fields); written as below, a
//! quarter of that (`docs/performance.md`). When the
//! console is not a terminal (files and console then get the same plain
//! text), lines are instead formatted once into a per-thread buffer, the
//! timestamp's date and time remade only when the second changes (as nginx
//! caches its time strings), and appended to both buffers. The text is the
//! formatter's, byte for byte (a test compares them), so the files read the
//! same either way. With colours on a terminal, lines still go through
//! `tracing`.

use std::{
    borrow::Cow,
    cell::RefCell,
    fmt::{self, Write as _},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use app_api_abi::level;
use http::{Method, StatusCode, Version};

use super::{
    AppLogger,
    sink::{self, BufferedWriter},
    with_request_id,
};

/// The `tracing` target of access lines for requests no app answered.
pub const HOST_TARGET: &str = "host::access";

/// One access-log line, like nginx's: client, request line, status, body
/// bytes, time taken (to the response head), referer and user agent (as
/// nginx's `combined` format), and the trace id of a `traceparent`.
pub struct Access<'a> {
    pub client: &'a str,
    pub method: &'a Method,
    pub target: &'a str,
    pub version: Version,
    pub status: StatusCode,
    pub bytes: u64,
    pub took: Duration,
    /// The `Referer` header, as sent.
    pub referer: Option<&'a [u8]>,
    /// The `User-Agent` header, as sent.
    pub user_agent: Option<&'a [u8]>,
    /// The trace id of a well-formed W3C `traceparent` header.
    pub trace_id: Option<&'a str>,
    /// When the response was ready (`took` ends there); the line's
    /// timestamp.
    pub finished: Instant,
}

impl Access<'_> {
    /// Appends the line's text: `127.0.0.1:60518 "GET /hello HTTP/1.1" 200
    /// 57 0.012ms "https://example.com/" "curl/8.5.0"` (`"-"` for a header
    /// not sent), then ` trace_id=…` when there is one.
    fn write_to(&self, out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(self.client.as_bytes());
        out.extend_from_slice(b" \"");
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.version_text().as_bytes());
        out.extend_from_slice(b"\" ");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(number.format(self.bytes).as_bytes());
        out.push(b' ');
        self.push_millis(out);
        out.extend_from_slice(b"ms");
        for header in [self.referer, self.user_agent] {
            out.extend_from_slice(b" \"");
            match header {
                Some(value) => push_escaped(out, value),
                None => out.push(b'-'),
            }
            out.push(b'"');
        }
        if let Some(trace_id) = self.trace_id {
            out.extend_from_slice(b" trace_id=");
            out.extend_from_slice(trace_id.as_bytes());
        }
    }
}

impl Access<'_> {
    /// `HTTP/1.1` and the others, as `Version`'s `Debug` writes them.
    fn version_text(&self) -> Cow<'static, str> {
        match version_text(self.version) {
            Some(version) => Cow::Borrowed(version),
            None => Cow::Owned(format!("{:?}", self.version)),
        }
    }

    /// Appends the time taken in milliseconds, to the microsecond: `0.012`.
    fn push_millis(&self, out: &mut Vec<u8>) {
        // in u64: `as_micros` gives a u128, whose division is a call
        let micros = u64::try_from(self.took.as_micros()).unwrap_or(u64::MAX);
        out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
        out.push(b'.');
        push_padded(out, micros % 1000, 3);
    }
}

/// Appends `now` as the formatter writes it, in UTC to the microsecond:
/// `2026-11-25T19:25:49.279337Z`.
fn push_timestamp(line: &mut Vec<u8>, clock: &mut Clock, now: SystemTime) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    clock.write_second(since_epoch.as_secs(), line);
    line.push(b'.');
    push_padded(line, since_epoch.subsec_micros(), 6);
    line.push(b'Z');
}

/// Appends `value`, what a client wrote, with `"`, `\` and every byte
/// outside printable ASCII as `\xNN` (as nginx escapes its variables): a
/// client can neither end the quoted field nor start a line of its own.
fn push_escaped(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value {
        if (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\' {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        }
    }
}

impl fmt::Display for Access<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(128);
        self.write_to(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

/// `HTTP/1.1` and the others, as `Version`'s `Debug` writes them.
fn version_text(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => return None,
    })
}

/// Appends `value` in decimal with at least `width` digits.
fn push_padded(out: &mut Vec<u8>, value: impl itoa::Integer, width: usize) {
    let mut number = itoa::Buffer::new();
    let digits = number.format(value).as_bytes();
    out.resize(out.len() + width.saturating_sub(digits.len()), b'0');
    out.extend_from_slice(digits);
}

/// Logs `access` under the request's id: in `logger`'s file, or in
/// `host.log` for `None`; on the console too with `--access-log -`.
pub fn log_access(logger: Option<AppLogger>, request_id: &str, access: &Access<'_>) {
    let enabled = match &logger {
        Some(logger) => logger.enabled(level::INFO),
        None => tracing::enabled!(target: HOST_TARGET, tracing::Level::INFO),
    };
    if !enabled {
        return;
    }
    let (target, module) = match &logger {
        Some(logger) => (logger.name(), Some("access")),
        None => (HOST_TARGET, None),
    };
    let direct = sink::direct();
    let file = match (&logger, direct) {
        (Some(logger), Some(_)) => logger.direct_file(),
        (None, Some(direct)) => Some(&direct.host),
        (_, None) => None,
    };
    match (direct, file) {
        (Some(direct), Some(file)) if !direct.access_to_console => {
            write_line(&[file], target, module, access, request_id);
        }
        (Some(direct), Some(file)) if direct.console_plain => {
            write_line(&[&direct.console, file], target, module, access, request_id);
        }
        // a terminal that wants access lines gets them coloured, through
        // the formatter (as does a host whose logging is not set up)
        _ => match logger {
            Some(logger) => with_request_id(request_id, || {
                logger.emit(level::INFO, "access", &access.to_string());
            }),
            None => tracing::info!(target: HOST_TARGET, request_id = %request_id, "{access}"),
        },
    }
}

thread_local! {
    /// This thread's line buffer and clock.
    static LINE: RefCell<(Vec<u8>, Clock)> = RefCell::new((Vec::with_capacity(256), Clock::default()));
}

/// Formats the line for `access`, now, into this thread's buffer and
/// appends it to each of `destinations`.
fn write_line(
    destinations: &[&BufferedWriter],
    target: &str,
    module: Option<&str>,
    access: &Access<'_>,
    request_id: &str,
) {
    LINE.with(|line| {
        let (bytes, clock) = &mut *line.borrow_mut();
        bytes.clear();
        let now = clock.wall_time(access.finished);
        if sink::direct().is_some_and(|direct| direct.json) {
            format_json_line(bytes, clock, now, target, access, request_id);
        } else {
            format_line(bytes, clock, now, target, access, module, request_id);
        }
        for destination in destinations {
            destination.append(bytes);
        }
    });
}

/// The text `tracing`'s formatter writes for an access event at `now`:
/// `2026-11-25T19:25:49.279337Z  INFO app_frontend: <access> module=access
/// request_id=<id>` (no `module` for the host's lines).
fn format_line(
    line: &mut Vec<u8>,
    clock: &mut Clock,
    now: SystemTime,
    target: &str,
    access: &Access<'_>,
    module: Option<&str>,
    request_id: &str,
) {
    push_timestamp(line, clock, now);
    line.extend_from_slice(b"  INFO ");
    line.extend_from_slice(target.as_bytes());
    line.extend_from_slice(b": ");
    access.write_to(line);
    if let Some(module) = module {
        line.extend_from_slice(b" module=");
        line.extend_from_slice(module.as_bytes());
    }
    line.extend_from_slice(b" request_id=");
    line.extend_from_slice(request_id.as_bytes());
    line.push(b'\n');
}

/// The JSON object of an access line at `now`, with the names and order of
/// the formatter's JSON events (`timestamp`, `level`, then the fields,
/// then `target`) and the access line's parts as fields of their own:
/// `{"timestamp":"2026-11-25T19:25:49.279337Z","level":"INFO","kind":"access",
/// "client":"127.0.0.1:60518","method":"GET","path":"/hello","version":"HTTP/1.1",
/// "status":200,"bytes":57,"duration_ms":0.012,"referer":null,"user_agent":"curl/8.5.0",
/// "trace_id":null,"request_id":"…","target":"app_frontend"}`.
fn format_json_line(
    line: &mut Vec<u8>,
    clock: &mut Clock,
    now: SystemTime,
    target: &str,
    access: &Access<'_>,
    request_id: &str,
) {
    line.extend_from_slice(b"{\"timestamp\":\"");
    push_timestamp(line, clock, now);
    line.extend_from_slice(b"\",\"level\":\"INFO\",\"kind\":\"access\",\"client\":");
    push_json(line, access.client.as_bytes());
    line.extend_from_slice(b",\"method\":");
    push_json(line, access.method.as_str().as_bytes());
    line.extend_from_slice(b",\"path\":");
    push_json(line, access.target.as_bytes());
    line.extend_from_slice(b",\"version\":");
    push_json(line, access.version_text().as_bytes());
    line.extend_from_slice(b",\"status\":");
    line.extend_from_slice(access.status.as_str().as_bytes());
    line.extend_from_slice(b",\"bytes\":");
    line.extend_from_slice(itoa::Buffer::new().format(access.bytes).as_bytes());
    line.extend_from_slice(b",\"duration_ms\":");
    access.push_millis(line);
    for (name, value) in [
        (&b",\"referer\":"[..], access.referer),
        (b",\"user_agent\":", access.user_agent),
        (b",\"trace_id\":", access.trace_id.map(str::as_bytes)),
        (b",\"request_id\":", Some(request_id.as_bytes())),
        (b",\"target\":", Some(target.as_bytes())),
    ] {
        line.extend_from_slice(name);
        match value {
            Some(value) => push_json(line, value),
            None => line.extend_from_slice(b"null"),
        }
    }
    line.extend_from_slice(b"}\n");
}

/// Appends `value` as a JSON string: what a client sent may be any bytes,
/// so those that are not UTF-8 become U+FFFD.
fn push_json(out: &mut Vec<u8>, value: &[u8]) {
    let text = String::from_utf8_lossy(value);
    serde_json::to_writer(&mut *out, text.as_ref()).expect("writing into memory does not fail");
}

/// The date and time of the latest second written, as text, and the
/// wall-clock time of a recent monotonic instant.
#[derive(Default)]
struct Clock {
    second: Option<u64>,
    text: String,
    /// A reading of both clocks, at most [`ANCHOR_LIFE`] old when used.
    anchor: Option<(Instant, SystemTime)>,
}

/// How long a reading of the system clock serves to date lines: a step of
/// the system clock shows in the log within this time.
const ANCHOR_LIFE: Duration = Duration::from_secs(1);

impl Clock {
    /// The wall-clock time at `at`, which is a moment ago: worked out from
    /// the monotonic clock and a reading of both clocks made less than
    /// [`ANCHOR_LIFE`] before, so a line costs no reading of the system
    /// clock (the request's end was read from the monotonic clock already;
    /// nginx likewise dates its log lines from a cached time).
    fn wall_time(&mut self, at: Instant) -> SystemTime {
        if let Some((instant, wall)) = self.anchor
            && let Some(since) = at.checked_duration_since(instant)
            && since < ANCHOR_LIFE
        {
            return wall + since;
        }
        let (instant, wall) = (Instant::now(), SystemTime::now());
        self.anchor = Some((instant, wall));
        let ago = instant.saturating_duration_since(at);
        wall.checked_sub(ago).unwrap_or(wall)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS` (UTC) for `second` since the epoch.
    fn write_second(&mut self, second: u64, out: &mut Vec<u8>) {
        if self.second != Some(second) {
            self.text.clear();
            let time = i64::try_from(second)
                .ok()
                .and_then(|second| time::OffsetDateTime::from_unix_timestamp(second).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let _ = write!(
                self.text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                time.year(),
                u8::from(time.month()),
                time.day(),
                time.hour(),
                time.minute(),
                time.second()
            );
            self.second = Some(second);
        }
        out.extend_from_slice(self.text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use super::*;

    fn sample(method: &Method) -> Access<'_> {
        Access {
            client: "127.0.0.1:60518",
            method,
            target: "/hello?x=1",
            version: Version::HTTP_11,
            status: StatusCode::NOT_FOUND,
            bytes: 712,
            took: Duration::from_nanos(1_760_499),
            referer: Some(b"https://example.com/a\"b"),
            user_agent: None,
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            finished: Instant::now(),
        }
    }

    fn formatted(now: SystemTime, target: &str, module: Option<&str>) -> String {
        let method = Method::GET;
        let mut bytes = Vec::new();
        format_line(
            &mut bytes,
            &mut Clock::default(),
            now,
            target,
            &sample(&method),
            module,
            "ff2bcd7d724b4192",
        );
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn lines_read_like_nginx_with_a_utc_timestamp() {
        let now = UNIX_EPOCH + Duration::from_micros(1_764_100_000_123_456);
        assert_eq!(
            formatted(now, "app_frontend", Some("access")),
            "2025-11-25T19:46:40.123456Z  INFO app_frontend: 127.0.0.1:60518 \"GET /hello?x=1 HTTP/1.1\" 404 712 1.760ms \"https://example.com/a\\x22b\" \"-\" trace_id=4bf92f3577b34da6a3ce929d0e0e4736 module=access request_id=ff2bcd7d724b4192\n"
        );
        // the cached second is remade when the second changes
        let mut clock = Clock::default();
        let mut out = Vec::new();
        clock.write_second(0, &mut out);
        clock.write_second(86_400 + 3_661, &mut out);
        clock.write_second(86_400 + 3_661, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:001970-01-02T01:01:011970-01-02T01:01:01"
        );
    }

    #[test]
    fn json_lines_are_one_object_whatever_the_client_sent() {
        let now = UNIX_EPOCH + Duration::from_micros(1_764_100_000_123_456);
        let method = Method::GET;
        let mut access = sample(&method);
        access.user_agent = Some(b"evil\"}\n{\"forged\":1 \xff\\");
        let mut bytes = Vec::new();
        format_json_line(
            &mut bytes,
            &mut Clock::default(),
            now,
            "app_frontend",
            &access,
            "ff2b",
        );
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with("}\n"), "{text}");
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        let expected = serde_json::json!({
            "timestamp": "2025-11-25T19:46:40.123456Z",
            "level": "INFO",
            "kind": "access",
            "client": "127.0.0.1:60518",
            "method": "GET",
            "path": "/hello?x=1",
            "version": "HTTP/1.1",
            "status": 404,
            "bytes": 712,
            "duration_ms": 1.76,
            "referer": "https://example.com/a\"b",
            "user_agent": "evil\"}\n{\"forged\":1 \u{fffd}\\",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "request_id": "ff2b",
            "target": "app_frontend",
        });
        assert_eq!(line, expected);
        access.referer = None;
        access.trace_id = None;
        let mut bytes = Vec::new();
        format_json_line(
            &mut bytes,
            &mut Clock::default(),
            now,
            "host::access",
            &access,
            "1",
        );
        let line: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(line["referer"], serde_json::Value::Null);
        assert_eq!(line["trace_id"], serde_json::Value::Null);
    }

    #[test]
    fn lines_are_dated_from_a_reading_of_both_clocks_at_most_a_second_old() {
        let close = |a: SystemTime, b: SystemTime| {
            let apart = a.duration_since(b).unwrap_or_else(|error| error.duration());
            apart < Duration::from_millis(50)
        };
        let mut clock = Clock::default();
        let start = Instant::now();
        let first = clock.wall_time(start);
        assert!(close(first, SystemTime::now()));
        let (instant, wall) = clock.anchor.expect("anchored");
        // within the anchor's life: the monotonic time since it, added
        let later = instant + Duration::from_millis(300);
        assert_eq!(clock.wall_time(later), wall + Duration::from_millis(300));
        assert_eq!(clock.anchor, Some((instant, wall)));
        // a second or more after it: the clocks are read again
        let much_later = instant + ANCHOR_LIFE;
        clock.wall_time(much_later);
        assert_ne!(clock.anchor.map(|(instant, _)| instant), Some(instant));
        // an instant before the anchor: the clocks are read again
        let mut clock = Clock {
            anchor: Some((instant + Duration::from_secs(5), wall)),
            ..Clock::default()
        };
        assert!(close(clock.wall_time(start), SystemTime::now()));
    }

    #[test]
    fn what_clients_wrote_cannot_end_its_field_or_the_line() {
        for (value, expected) in [
            (&b"Mozilla/5.0 (X11; Linux)"[..], "Mozilla/5.0 (X11; Linux)"),
            (b"a\"b\\c", "a\\x22b\\x5Cc"),
            (b"x\ny\rz", "x\\x0Ay\\x0Dz"),
            ("caf\u{e9}".as_bytes(), "caf\\xC3\\xA9"),
            (b"\x7f\x00", "\\x7F\\x00"),
        ] {
            let mut out = Vec::new();
            push_escaped(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{value:?}");
        }
    }

    #[test]
    fn versions_read_as_their_debug_text() {
        for version in [
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            assert_eq!(version_text(version), Some(format!("{version:?}").as_str()));
        }
        let mut out = Vec::new();
        push_padded(&mut out, 7u32, 3);
        push_padded(&mut out, 1234u32, 3);
        assert_eq!(out, b"0071234");
    }

    /// A writer into shared memory, for the formatter.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What `tracing`'s formatter, set up as for serving, writes for `emit`.
    fn through_the_formatter(emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn direct_lines_are_the_formatters_lines() {
        let method = Method::GET;
        let access = sample(&method);
        let logger = AppLogger::new("app_access_test");
        let rows = [
            (
                through_the_formatter(|| {
                    with_request_id("ff2bcd7d724b4192", || {
                        logger.emit(level::INFO, "access", &access.to_string());
                    });
                }),
                "app_access_test",
                Some("access"),
            ),
            (
                through_the_formatter(|| {
                    tracing::info!(target: HOST_TARGET, request_id = %"ff2bcd7d724b4192", "{access}");
                }),
                HOST_TARGET,
                None,
            ),
        ];
        for (expected, target, module) in rows {
            let ours = formatted(SystemTime::now(), target, module);
            // equal after the timestamp, which both write as 27 characters
            assert_eq!(ours.len(), expected.len(), "{ours}{expected}");
            assert_eq!(ours[27..], expected[27..]);
            assert!(
                expected[..27].ends_with('Z') && expected.as_bytes()[10] == b'T',
                "{expected}"
            );
        }
    }
}
