//! `thesis-mock-llm [ADDR]`: serves the fake upstream (default 127.0.0.1:8089).

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8089".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!(
        "mock upstream on http://{}",
        listener.local_addr().expect("addr")
    );
    thesis_mock_llm::serve(listener).await;
}
