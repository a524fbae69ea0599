//! The `Kv` service's four unary calls (its stream is in
//! [`super::kv_stream`]): each is checked, handed to the driver, and
//! answered, or refused at its deadline.

use std::time::Duration;

use proto::kv as kvpb;
use tonic::{Request, Response, Status};

use super::calls::{Call, bounded_deadline, submit};
use super::shared::{Shared, asked_deadline};

/// The service clients call.
pub struct KvService(pub Shared);

impl KvService {
    /// One unary call: check it, hand it to the driver, wait for the answer.
    async fn unary<T>(
        &self,
        req: Request<T>,
        check: fn(&Shared, T) -> Result<Call, Status>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        let limit = deadline(&req);
        let call = check(&self.0, req.into_inner())?;
        let pending = submit(&self.0, vec![call])?
            .pop()
            .expect("one answer slot per call");
        pending.response(limit).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl kvpb::kv_server::Kv for KvService {
    async fn get(
        &self,
        req: Request<kvpb::GetRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::get).await
    }

    async fn put(
        &self,
        req: Request<kvpb::PutRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::put).await
    }

    async fn cas(
        &self,
        req: Request<kvpb::CasRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::cas).await
    }

    async fn append(
        &self,
        req: Request<kvpb::AppendRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::append).await
    }

    type StreamStream = super::kv_stream::Replies;

    async fn stream(
        &self,
        req: Request<tonic::Streaming<kvpb::KvCalls>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        Ok(Response::new(super::kv_stream::start(
            self.0.clone(),
            req.into_inner(),
        )))
    }
}

/// The deadline a unary client asked for (the `grpc-timeout` header), bounded.
fn deadline<T>(req: &Request<T>) -> Duration {
    bounded_deadline(asked_deadline(req))
}
