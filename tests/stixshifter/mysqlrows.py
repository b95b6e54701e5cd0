"""Rows for the MariaDB table, in the mysql connector's schema (stix_shifter_modules/mysql/
stix_translation/json/to_stix_map.json: column -> STIX attribute).  Tests compute what
Kestrel must return from these rows with plain Python, never with Kestrel.
"""

from datetime import datetime, timezone

COLUMNS = {
    "source_ipaddr": "VARCHAR(64)", "dest_ipaddr": "VARCHAR(64)", "url": "TEXT",
    "source_port": "INT", "dest_port": "INT", "protocol": "VARCHAR(16)",
    "username": "VARCHAR(64)", "filename": "VARCHAR(255)", "sha256hash": "VARCHAR(64)",
    "md5hash": "VARCHAR(32)", "file_path": "VARCHAR(255)", "process_id": "INT",
    "process_name": "VARCHAR(255)", "process_arguments": "TEXT", "entry_time": "BIGINT",
    "system_name": "VARCHAR(64)", "severity": "INT",
}

A, B, C, SERVER = "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.9.9.9"
BULK_PORT, BULK_COUNT, RECENT_PORT = 8443, 12345, 7777


def ms(stamp: str) -> int:
    """Epoch milliseconds (what entry_time holds) of an ISO UTC timestamp."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


def stamp(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _row(time, src, dst, sport, dport, **extra):
    row = dict.fromkeys(COLUMNS)
    row.update(source_ipaddr=src, dest_ipaddr=dst, source_port=sport, dest_port=dport,
               protocol="tcp", entry_time=ms(time), system_name="ws-01", severity=3)
    row.update(extra)
    return row


def hunt_rows() -> list:
    """2024-01-01: A and B beacon to port 4444 at 10:00-10:04; around that A, B and C
    make other connections, some inside the FIND time window (+-5 min), some outside."""
    beacon = dict(process_id=4242, process_name="beacon.exe", filename="beacon.exe",
                  file_path="C:\\Users\\Public", sha256hash="ab" * 32, username="alice")
    return [
        _row("2024-01-01T10:00:00Z", A, SERVER, 50001, 4444, **beacon),
        _row("2024-01-01T10:02:00Z", A, SERVER, 50002, 4444, **beacon),
        _row("2024-01-01T10:04:00Z", B, SERVER, 50003, 4444, process_id=4343,
             process_name="beacon.exe", username="bob"),
        _row("2024-01-01T09:56:00Z", A, "10.9.9.1", 50004, 80, url="http://10.9.9.1/a"),
        _row("2024-01-01T10:06:00Z", A, "10.9.9.2", 50005, 443),
        _row("2024-01-01T10:08:00Z", B, "10.9.9.3", 50006, 53, protocol="udp"),
        _row("2024-01-01T12:00:00Z", A, "10.9.9.2", 50007, 443),       # after the window
        _row("2024-01-01T08:00:00Z", B, "10.9.9.4", 50008, 22),        # before it
        _row("2024-01-01T10:01:00Z", C, "10.9.9.2", 50009, 443),       # another source
        _row("2024-01-01T10:03:00Z", C, A, 50010, 8080),               # A as destination
        _row("2024-01-01T11:00:00Z", C, "10.9.9.5", 50011, 443, process_id=100,
             process_name="cmd.exe", process_arguments="/c whoami", username="carol"),
        _row("2024-01-01T11:05:00Z", C, "10.9.9.5", 50012, 443, process_id=200,
             process_name="cmd.exe", username="carol"),
        _row("2024-01-01T11:10:00Z", C, "10.9.9.6", 50013, 445, process_id=300,
             process_name="powershell.exe", process_arguments="-enc AAAA", username="carol"),
        _row("2024-01-01T11:20:00Z", C, "10.9.9.7", 50014, 9999, process_name="orphan.exe",
             filename="orphan.exe"),                                      # a process without pid
    ]


def bulk_rows() -> list:
    """2024-02-01: BULK_COUNT connections to BULK_PORT, one a second, each distinct."""
    start = ms("2024-02-01T00:00:00Z")
    rows = []
    for i in range(BULK_COUNT):
        row = _row("2024-02-01T00:00:00Z", f"10.2.{i // 250}.{i % 250}", SERVER,
                   10000 + i, BULK_PORT)
        row["entry_time"] = start + i * 1000
        rows.append(row)
    return rows


def recent_rows(now_ms: int) -> list:
    """Two connections to RECENT_PORT: 10 minutes and 3 hours before `now_ms`."""
    rows = []
    for minutes, sport in ((10, 60001), (180, 60002)):
        row = _row("2024-01-01T00:00:00Z", A, SERVER, sport, RECENT_PORT)
        row["entry_time"] = now_ms - minutes * 60_000
        rows.append(row)
    return rows
