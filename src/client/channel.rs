//! What the tokio [`Client`](super::Client), its [`SampleStream`](super::SampleStream)s and the
//! task that owns the connection say to each other.

use tokio::sync::{mpsc, oneshot};

use super::connection::{Answer, FrameSamples, Request};
use super::error::ClientError;

/// What the stream of one sampling session receives.
pub(crate) enum SampleMsg {
    /// One frame's samples (or a frame that does not fit the session).
    Block(Result<FrameSamples, ClientError>),
    /// The session is over (`None`: stopped).
    End(Option<ClientError>),
}

/// An answer with, for a `sample` over this connection, the receiver of its blocks.
pub(crate) struct Delivered {
    pub(crate) answer: Answer,
    pub(crate) blocks: Option<mpsc::Receiver<SampleMsg>>,
}

pub(crate) type AnswerTx = oneshot::Sender<Result<Delivered, ClientError>>;

/// What the client, and the streams it started, ask of the connection task.
pub(crate) enum ToActor {
    /// Send a request; answer on `reply` (or drop the answer).
    Send {
        request: Request,
        reply: Option<AnswerTx>,
    },
    /// The stream's reader is ready for more samples (flow-control credit).
    WantSamples,
    /// The `reqSamples` credit size.
    FlowCredit(u16),
}
