//! Deterministic generator of synthetic Voyado Engage contact-export files, for benchmarks and
//! manual tests. Only std; writes about 1,000,000 contacts a second or more.
//!
//! ```text
//! cargo run --release --example gen_export -- --out DIR --contacts 1000000 \
//!     [--per-file 10000] [--start-id 0] [--timestamp 20260101000000] [--label members] \
//!     [--updates N] [--deletes N] [--update-of-range LO..HI] [--variant V]
//! ```
//!
//! Files are named `[timestamp]_[filenumber]_[label].xml` (file number from 0) and hold at most
//! `--per-file` members each: first the `--contacts` new contacts (ids `start-id..`), then the
//! `--updates` updated ones, then the `--deletes` deleted ones. Updated and deleted contacts
//! are picked from `--update-of-range` (default: `0..start-id`, i.e. the contacts a previous
//! run with `--start-id 0` created), spread over the range by a fixed permutation, and never
//! the same contact twice (updates and deletes are disjoint).
//!
//! Contact `n` always has the id `6f1c2e4a-3b1d-4c8e-9a0b-{n:012x}`, the mobile phone
//! `+467{n % 10^8:08}` and the member number `{100000000 + n}`, so a benchmark can look up
//! contacts it knows exist. `--variant` (default 0 for new, 1 for updated contacts) changes
//! e-mail domain, street, city and zip code between versions of a contact.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const NS: &str = "http://eClub.Schemas.ExportMember";

/// First names: (as written, ASCII form for the e-mail address).
const FIRST: &[(&str, &str)] = &[
    ("Åsa", "asa"),
    ("Björn", "bjorn"),
    ("Jürgen", "jurgen"),
    ("Zoë", "zoe"),
    ("Ørjan", "orjan"),
    ("Anna", "anna"),
    ("Måns", "mans"),
    ("Sören", "soren"),
    ("Ingrid", "ingrid"),
    ("Émile", "emile"),
    ("Lars", "lars"),
    ("Märta", "marta"),
    ("Göran", "goran"),
    ("Sofia", "sofia"),
    ("Ævar", "aevar"),
    ("Karin", "karin"),
    ("Håkan", "hakan"),
];

const LAST: &[(&str, &str)] = &[
    ("Öberg", "oberg"),
    ("Åström", "astrom"),
    ("Müller", "muller"),
    ("Lindqvist", "lindqvist"),
    ("Nilsson", "nilsson"),
    ("Sjöström", "sjostrom"),
    ("Bækgaard", "baekgaard"),
    ("Ekström", "ekstrom"),
    ("Johansson", "johansson"),
    ("Lövgren", "lovgren"),
    ("Wärnström", "warnstrom"),
    ("Dvořák", "dvorak"),
    ("Karlsson", "karlsson"),
];

const DOMAINS: &[&str] = &[
    "Example.com",
    "example.se",
    "Mail.Example.org",
    "example.net",
    "EXAMPLE.NU",
];

const STREETS: &[&str] = &[
    "Storgatan",
    "Kungsgatan",
    "Drottninggatan",
    "Vasagatan",
    "Östra Långgatan",
    "Skolgatan",
    "Björkvägen",
    "Ängsvägen",
    "Järnvägsgatan",
];

const CITIES: &[&str] = &[
    "Umeå",
    "Göteborg",
    "Malmö",
    "Västerås",
    "Jönköping",
    "Linköping",
    "Örebro",
    "Norrköping",
    "Stockholm",
    "Gävle",
    "Skellefteå",
];

struct Args {
    out: PathBuf,
    contacts: u64,
    per_file: u64,
    start_id: u64,
    timestamp: String,
    label: String,
    updates: u64,
    deletes: u64,
    range: Option<(u64, u64)>,
    variant: Option<u64>,
}

const USAGE: &str = "usage: gen_export --out DIR [--contacts N] [--per-file N] [--start-id N] \
[--timestamp YYYYMMDDHHmmss] [--label NAME] [--updates N] [--deletes N] [--update-of-range LO..HI] \
[--variant V]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        out: PathBuf::new(),
        contacts: 0,
        per_file: 10_000,
        start_id: 0,
        timestamp: "20260101000000".into(),
        label: "members".into(),
        updates: 0,
        deletes: 0,
        range: None,
        variant: None,
    };
    let mut out = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(&value)),
            "--contacts" => a.contacts = num()?,
            "--per-file" => a.per_file = num()?,
            "--start-id" => a.start_id = num()?,
            "--updates" => a.updates = num()?,
            "--deletes" => a.deletes = num()?,
            "--variant" => a.variant = Some(num()?),
            "--timestamp" => {
                if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("--timestamp: {value:?} is not YYYYMMDDHHmmss"));
                }
                a.timestamp = value;
            }
            "--label" => a.label = value,
            "--update-of-range" => {
                let (lo, hi) = value
                    .split_once("..")
                    .ok_or_else(|| format!("--update-of-range: {value:?} is not LO..HI"))?;
                let p = |s: &str| {
                    s.replace('_', "")
                        .parse::<u64>()
                        .map_err(|_| format!("--update-of-range: {value:?} is not LO..HI"))
                };
                a.range = Some((p(lo)?, p(hi)?));
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    a.out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    if a.per_file == 0 {
        return Err("--per-file must be at least 1".into());
    }
    Ok(a)
}

/// Contact `n`'s GUID: random-looking (as Engage's are) but deterministic, so inserts land all
/// over the contact-id index as they do for real data, and a later run can name the same
/// contact. The low 48 bits keep `n`, so ids are unique.
fn guid(n: u64) -> String {
    let h = splitmix64(n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        0x8000 | ((h >> 50) & 0x3fff),
        n & 0xffff_ffff_ffff
    )
}

/// A bijective 64-bit mix (SplitMix64's finaliser).
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Picks `count` distinct contacts of `lo..hi`, starting at position `skip` of a fixed
/// permutation of the range (so two calls with disjoint position ranges are disjoint).
struct Picker {
    lo: u64,
    len: u64,
    stride: u64,
}

impl Picker {
    fn new(lo: u64, hi: u64) -> Picker {
        let len = hi.saturating_sub(lo).max(1);
        let mut stride = 2_654_435_761 % len;
        if stride == 0 {
            stride = 1;
        }
        while gcd(stride, len) != 1 {
            stride += 1;
        }
        Picker { lo, len, stride }
    }

    fn pick(&self, i: u64) -> u64 {
        self.lo + ((i as u128 * self.stride as u128 + 7) % self.len as u128) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Appends one `<member>` with every field of contact `n` in version `variant`.
fn member(buf: &mut String, n: u64, variant: u64) {
    let (first, first_ascii) = FIRST[(n % FIRST.len() as u64) as usize];
    let (last, last_ascii) = LAST[((n / 7) % LAST.len() as u64) as usize];
    let v = n.wrapping_add(variant.wrapping_mul(3));
    let domain = DOMAINS[(v % DOMAINS.len() as u64) as usize];
    let street = STREETS[((v / 3) % STREETS.len() as u64) as usize];
    let city = CITIES[((v / 5) % CITIES.len() as u64) as usize];
    let _ = write!(
        buf,
        "    <member source=\"POS\">\n      <contactId>{}</contactId>\n      \
         <memberNumber>{}</memberNumber>\n      <firstName>{first}</firstName>\n      \
         <lastName>{last}</lastName>\n      <email>{}.{}.{n}@{domain}</email>\n      \
         <mobilePhone>+467{:08}</mobilePhone>\n      <street>{street} {}</street>\n      \
         <zipCode>{:03} {:02}</zipCode>\n      <city>{city}</city>\n      \
         <countryCode>SE</countryCode>\n      <birthDay>{}-{:02}-{:02}</birthDay>\n      \
         <createdInStore>S{:03}</createdInStore>\n    </member>\n",
        guid(n),
        100_000_000 + n,
        capitalize(first_ascii),
        last_ascii,
        n % 100_000_000,
        1 + v % 120,
        100 + (v / 7) % 900,
        v % 100,
        1940 + n % 65,
        1 + (n / 3) % 12,
        1 + (n / 11) % 28,
        n % 250,
    );
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// What a slot of the output holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    New,
    Updated,
    Deleted,
}

fn run(a: &Args) -> Result<(), String> {
    std::fs::create_dir_all(&a.out).map_err(|e| format!("cannot create {:?}: {e}", a.out))?;
    let (lo, hi) = a.range.unwrap_or((0, a.start_id));
    if a.updates + a.deletes > hi.saturating_sub(lo) {
        return Err(format!(
            "{} updates + {} deletes do not fit in the range {lo}..{hi} (set --update-of-range)",
            a.updates, a.deletes
        ));
    }
    let picker = Picker::new(lo, hi);
    let total = a.contacts + a.updates + a.deletes;
    let variant_new = a.variant.unwrap_or(0);
    let variant_upd = a.variant.unwrap_or(1);
    // Slot i of the whole output: which kind and which contact.
    let slot = |i: u64| -> (Kind, u64) {
        if i < a.contacts {
            (Kind::New, a.start_id + i)
        } else if i < a.contacts + a.updates {
            (Kind::Updated, picker.pick(i - a.contacts))
        } else {
            (Kind::Deleted, picker.pick(i - a.contacts))
        }
    };

    let started = Instant::now();
    let mut bytes = 0u64;
    let mut files = 0u64;
    let mut buf = String::with_capacity(1 << 20);
    let mut first = 0u64;
    // An empty run still writes one (valid, empty) file.
    while first < total || (total == 0 && files == 0) {
        let last = (first + a.per_file).min(total);
        let path = a
            .out
            .join(format!("{}_{}_{}.xml", a.timestamp, files, a.label));
        let file = File::create(&path).map_err(|e| format!("cannot create {path:?}: {e}"))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let io = |e: std::io::Error| format!("cannot write {path:?}: {e}");
        let header =
            format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<contacts xmlns=\"{NS}\">\n");
        w.write_all(header.as_bytes()).map_err(io)?;
        bytes += header.len() as u64 + "</contacts>\n".len() as u64;
        for (kind, tag) in [
            (Kind::New, "new"),
            (Kind::Updated, "updated"),
            (Kind::Deleted, "deleted"),
        ] {
            buf.clear();
            let _ = writeln!(buf, "  <{tag}>");
            for i in first..last {
                let (k, n) = slot(i);
                if k != kind {
                    continue;
                }
                match k {
                    Kind::New => member(&mut buf, n, variant_new),
                    Kind::Updated => member(&mut buf, n, variant_upd),
                    Kind::Deleted => {
                        let _ = writeln!(
                            buf,
                            "    <member>\n      <contactId>{}</contactId>\n    </member>",
                            guid(n)
                        );
                    }
                }
                if buf.len() > (1 << 20) {
                    w.write_all(buf.as_bytes()).map_err(io)?;
                    bytes += buf.len() as u64;
                    buf.clear();
                }
            }
            let _ = writeln!(buf, "  </{tag}>");
            w.write_all(buf.as_bytes()).map_err(io)?;
            bytes += buf.len() as u64;
        }
        w.write_all(b"</contacts>\n").map_err(io)?;
        w.flush().map_err(io)?;
        files += 1;
        first = last;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "gen_export: {files} file(s), {} new + {} updated + {} deleted, {:.1} MB in {:.2} s \
         ({:.0} contacts/s) -> {}",
        a.contacts,
        a.updates,
        a.deletes,
        bytes as f64 / 1e6,
        secs,
        total as f64 / secs.max(1e-9),
        a.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_export: {e}");
            ExitCode::from(64)
        }
    }
}
