use super::*;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, PutMultipartOptions, PutOptions, PutResult,
    UploadPart,
};
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test]
async fn put_get_delete_round_trip_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store = Store::from_url(&url, &BTreeMap::new()).unwrap();
    let key = Path::from("data/t/c/x.parquet");
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.put(&key, Bytes::from_static(b"abc")).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"abc"[..]));
    assert!(dir.path().join("data/t/c/x.parquet").exists());
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.key_prefix(), "");
    assert!(
        store.describe().ends_with("(local directory)"),
        "{}",
        store.describe()
    );
}

#[test]
fn a_plain_path_opens_a_local_directory_and_refuses_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/store");
    let store = Store::from_url(path.to_str().unwrap(), &BTreeMap::new()).unwrap();
    assert!(path.is_dir());
    assert!(store.url().starts_with("file:///"), "{}", store.url());

    let options = BTreeMap::from([("aws_region".to_string(), "x".to_string())]);
    let err = Store::from_url(path.to_str().unwrap(), &options).unwrap_err();
    assert!(
        err.to_string()
            .contains("a local directory takes no options"),
        "{err}"
    );
}

#[test]
fn unsupported_schemes_are_refused_with_the_alternatives() {
    let err = Store::from_url("ftp://x", &BTreeMap::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported storage URL scheme 'ftp' in ftp://x: use a local path, file://, s3://, gs:// or az://"
    );
}

fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

#[tokio::test]
async fn large_local_puts_go_through_multipart_and_stay_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap().with_multipart(Multipart {
        threshold_bytes: 1000,
        part_bytes: 300,
        concurrency: 2,
    });
    let key = Path::from("data/t/c/big.parquet");
    let body = pattern(1001);
    store.put(&key, body.clone()).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(body));
    let names: Vec<_> = std::fs::read_dir(dir.path().join("data/t/c"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["big.parquet"], "no staging files are left behind");
}

#[tokio::test]
async fn a_failed_part_aborts_the_upload_and_nothing_becomes_visible() {
    let flaky = Arc::new(FlakyUploads::failing_part(2));
    let store = Store::from_object_store(flaky.clone()).with_multipart(Multipart {
        threshold_bytes: 10,
        part_bytes: 10,
        concurrency: 1,
    });
    let key = Path::from("data/t/c/x.parquet");
    let err = store.put(&key, pattern(45)).await.unwrap_err().to_string();
    assert!(
        err.starts_with("object store multipart put data/t/c/x.parquet"),
        "{err}"
    );
    assert_eq!(flaky.aborted.load(Ordering::SeqCst), 1);
    assert_eq!(store.get(&key).await.unwrap(), None);

    // Small objects still take the single put.
    store.put(&key, pattern(10)).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(pattern(10)));
}

#[tokio::test]
async fn a_cancelled_multipart_put_is_aborted() {
    let flaky = Arc::new(FlakyUploads::hanging());
    let store = Store::from_object_store(flaky.clone()).with_multipart(Multipart {
        threshold_bytes: 10,
        part_bytes: 10,
        concurrency: 1,
    });
    let key = Path::from("x");
    let put = store.put(&key, pattern(45));
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(50), put).await;
    assert!(timed_out.is_err());
    for _ in 0..100 {
        if flaky.aborted.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the dropped upload was not aborted");
}

/// An in-memory store whose multipart uploads fail (or hang) at one part and count aborts.
#[derive(Debug)]
struct FlakyUploads {
    inner: InMemory,
    fail_part: Option<usize>,
    aborted: Arc<AtomicUsize>,
}

impl FlakyUploads {
    fn failing_part(index: usize) -> Self {
        Self {
            inner: InMemory::new(),
            fail_part: Some(index),
            aborted: Arc::default(),
        }
    }

    fn hanging() -> Self {
        Self {
            inner: InMemory::new(),
            fail_part: None,
            aborted: Arc::default(),
        }
    }
}

impl std::fmt::Display for FlakyUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlakyUploads")
    }
}

#[derive(Debug)]
struct FlakyUpload {
    inner: Box<dyn MultipartUpload>,
    fail_part: Option<usize>,
    next_part: usize,
    aborted: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl MultipartUpload for FlakyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let index = self.next_part;
        self.next_part += 1;
        match self.fail_part {
            Some(fail) if fail == index => Box::pin(async {
                Err(object_store::Error::Generic {
                    store: "FlakyUploads",
                    source: "part refused".into(),
                })
            }),
            Some(_) => self.inner.put_part(data),
            None => Box::pin(futures::future::pending()),
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.aborted.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for FlakyUploads {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FlakyUpload {
            inner,
            fail_part: self.fail_part,
            next_part: 0,
            aborted: self.aborted.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
