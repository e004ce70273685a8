//! The `sample` request: destination, measure set, slot (docs/protocol.md §5).

/// Where a sampling session sends its data (`type` of the sample request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// `Serial`: the serial port.
    Serial,
    /// `TCP`: the requesting connection.
    Tcp,
    /// `UDP`: datagrams to the requester's address at `port`.
    Udp {
        /// Destination port, 1..=65535 (default 54323).
        port: u16,
    },
    /// `MQTT`: one JSON per sample on `powermeter/<name>/state/info`.
    Mqtt,
    /// `FFMPEG`: re-configures the raw stream on port 54322.
    Ffmpeg,
}

impl StreamType {
    /// Default UDP destination port.
    pub const DEFAULT_UDP_PORT: u16 = 54323;

    /// The wire name (`type` of the request, `conn_type` of the reply).
    pub const fn as_str(&self) -> &'static str {
        match self {
            StreamType::Serial => "Serial",
            StreamType::Tcp => "TCP",
            StreamType::Udp { .. } => "UDP",
            StreamType::Mqtt => "MQTT",
            StreamType::Ffmpeg => "FFMPEG",
        }
    }

    /// The type for a wire name (ASCII case-insensitive), with `port` for UDP.
    pub fn from_name(name: &str, port: u16) -> Option<StreamType> {
        // The canonical spellings first, by bytes; then trimmed and case-insensitive.
        match name {
            "TCP" => return Some(StreamType::Tcp),
            "UDP" => return Some(StreamType::Udp { port }),
            "MQTT" => return Some(StreamType::Mqtt),
            _ => {}
        }
        let t = name.trim();
        Some(if t.eq_ignore_ascii_case("Serial") {
            StreamType::Serial
        } else if t.eq_ignore_ascii_case("TCP") {
            StreamType::Tcp
        } else if t.eq_ignore_ascii_case("UDP") {
            StreamType::Udp { port }
        } else if t.eq_ignore_ascii_case("MQTT") {
            StreamType::Mqtt
        } else if t.eq_ignore_ascii_case("FFMPEG") {
            StreamType::Ffmpeg
        } else {
            return None;
        })
    }
}

/// The six measure sets of a sampling session (docs/protocol.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Measures {
    /// Waveforms of all phases: `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` (the default).
    #[default]
    VoltCurrent3,
    /// Waveforms of L1: `v_l1,i_l1`.
    VoltCurrentL1,
    /// Waveforms of L2: `v_l2,i_l2`.
    VoltCurrentL2,
    /// Waveforms of L3: `v_l3,i_l3`.
    VoltCurrentL3,
    /// Active and reactive power per phase: `p_l1,p_l2,p_l3,q_l1,q_l2,q_l3` (derived).
    PowerPQ,
    /// RMS voltage and current per phase: `vrms_l1..3,irms_l1..3` (derived).
    Rms,
}

impl Measures {
    /// Every set.
    pub const ALL: [Measures; 6] = [
        Measures::VoltCurrent3,
        Measures::VoltCurrentL1,
        Measures::VoltCurrentL2,
        Measures::VoltCurrentL3,
        Measures::PowerPQ,
        Measures::Rms,
    ];

    /// Channel names, in the order samples are interleaved in a frame.
    pub const fn channels(self) -> &'static str {
        match self {
            Measures::VoltCurrent3 => "v_l1,i_l1,v_l2,i_l2,v_l3,i_l3",
            Measures::VoltCurrentL1 => "v_l1,i_l1",
            Measures::VoltCurrentL2 => "v_l2,i_l2",
            Measures::VoltCurrentL3 => "v_l3,i_l3",
            Measures::PowerPQ => "p_l1,p_l2,p_l3,q_l1,q_l2,q_l3",
            Measures::Rms => "vrms_l1,vrms_l2,vrms_l3,irms_l1,irms_l2,irms_l3",
        }
    }

    /// The `measures` value of the sample reply (also the canonical request spelling).
    pub const fn reported(self) -> &'static str {
        match self {
            Measures::VoltCurrent3 => "v,i,v,i,v,i",
            Measures::VoltCurrentL1 => "v,i_L1",
            Measures::VoltCurrentL2 => "v,i_L2",
            Measures::VoltCurrentL3 => "v,i_L3",
            Measures::PowerPQ => "p,p,p,q,q,q",
            Measures::Rms => "v,v,v,i,i,i_RMS",
        }
    }

    /// The `unit` value of the sample reply.
    pub const fn unit(self) -> &'static str {
        match self {
            Measures::VoltCurrent3 => "V,mA,V,mA,V,mA",
            Measures::VoltCurrentL1 | Measures::VoltCurrentL2 | Measures::VoltCurrentL3 => "V,mA",
            Measures::PowerPQ => "W,W,W,VAR,VAR,VAR",
            Measures::Rms => "V,V,V,mA,mA,mA",
        }
    }

    /// Values per sample (`measurements` of the reply).
    pub const fn count(self) -> usize {
        match self {
            Measures::VoltCurrentL1 | Measures::VoltCurrentL2 | Measures::VoltCurrentL3 => 2,
            _ => 6,
        }
    }

    /// Derived sets are computed per line cycle; their rate is limited to
    /// [`SampleRequest::MAX_DERIVED_RATE_HZ`].
    pub const fn is_derived(self) -> bool {
        matches!(self, Measures::PowerPQ | Measures::Rms)
    }

    /// Any accepted spelling (`v,i`, `v,i,v,i,v,i`, `v,i_L1`, `p,q`, `p,p,p,q,q,q`, `v,i_RMS`,
    /// `v,v,v,i,i,i_RMS`); spaces are ignored and an empty string is the default set.
    pub fn parse(text: &str) -> Option<Measures> {
        let mut buf = [0u8; 24];
        let mut n = 0;
        for b in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
            *buf.get_mut(n)? = b;
            n += 1;
        }
        Some(match buf.get(..n)? {
            b"" | b"v,i" | b"v,i,v,i,v,i" => Measures::VoltCurrent3,
            b"v,i_L1" => Measures::VoltCurrentL1,
            b"v,i_L2" => Measures::VoltCurrentL2,
            b"v,i_L3" => Measures::VoltCurrentL3,
            b"p,q" | b"p,p,p,q,q,q" => Measures::PowerPQ,
            b"v,i_RMS" | b"v,v,v,i,i,i_RMS" => Measures::Rms,
            _ => return None,
        })
    }
}

/// `slot [s,n]`: send only while `unix_seconds % slots == slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// This device's slot, `< slots`.
    pub slot: u32,
    /// Number of slots, ≥ 1.
    pub slots: u32,
}

/// A validated `sample` request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRequest {
    /// Where the data goes.
    pub stream: StreamType,
    /// What is sampled.
    pub measures: Measures,
    /// Output rate, 1..=32000 Hz (≤ 50 for derived measures).
    pub rate_hz: u32,
    /// `Data:` prefix on frames (default true).
    pub prefix: bool,
    /// `flowCtr`: send only on `reqSamples` credit (default false).
    pub flow_control: bool,
    /// `time`: start at this Unix time in seconds. Only checked to be finite and > 0 here; the
    /// engine checks the 0.5–20 s window against its clock (`Start time must be 0.5-20 s ahead`).
    pub start_time: Option<f64>,
    /// `slot`: time-slotted sending.
    pub slot: Option<Slot>,
    /// `ntpConf`: required NTP confidence in ms before starting.
    pub ntp_conf_ms: Option<u32>,
}

impl SampleRequest {
    /// Rate when none is given.
    pub const DEFAULT_RATE_HZ: u32 = 8000;
    /// Highest rate.
    pub const MAX_RATE_HZ: u32 = 32_000;
    /// Highest rate of derived measures (`p,q`, `v,i_RMS`).
    pub const MAX_DERIVED_RATE_HZ: u32 = 50;

    /// A request with every default: all six waveforms at 8000 Hz, prefix on, no flow control.
    pub fn new(stream: StreamType) -> SampleRequest {
        SampleRequest {
            stream,
            measures: Measures::VoltCurrent3,
            rate_hz: SampleRequest::DEFAULT_RATE_HZ,
            prefix: true,
            flow_control: false,
            start_time: None,
            slot: None,
            ntp_conf_ms: None,
        }
    }
}
