//! Parquet input: polars' streaming engine decodes frames on a thread of its own.

use std::fs::File;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};

use anyhow::{anyhow, Context, Result};
use polars::prelude::*;

use super::arrow_types::{declared_schema, InputTypes};
use super::{check_phone_columns, excerpt, Columns, InputReader, Source};
use crate::config::InputConfig;

pub(super) struct ParquetSource {
    /// Starts the decoding thread; taken by the first read.
    start: Option<Box<dyn FnOnce() -> std::io::Result<()> + Send>>,
    frames: Receiver<PolarsResult<DataFrame>>,
    path: PathBuf,
    /// The rows the file's footer declares.
    records: u64,
    /// The file's own types of the columns polars reads as others.
    types: InputTypes,
}

impl ParquetSource {
    pub(super) fn open(
        cfg: &InputConfig,
        columns: Columns,
        frame_rows: NonZeroUsize,
    ) -> Result<InputReader> {
        let path = cfg.path.clone();
        let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let ctx = || format!("reading {} as Parquet", path.display());
        // The footer first: types polars cannot carry are refused before polars sees them.
        let metadata = polars_parquet::read::read_metadata(&mut file)
            .map_err(|e| anyhow!("{}", excerpt(&e.to_string())))
            .with_context(ctx)?;
        let declared = declared_schema(&metadata)
            .map_err(|e| anyhow!("{}", excerpt(&e.to_string())))
            .with_context(ctx)?;
        let types =
            InputTypes::of_schema(&declared).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        drop(file);
        let args = ScanArgsParquet {
            glob: false,
            ..Default::default()
        };
        let mut lf = LazyFrame::scan_parquet(PlRefPath::new(path.to_string_lossy().as_ref()), args)
            .map_err(anyhow::Error::from)
            .with_context(ctx)?;
        let full = lf
            .collect_schema()
            .map_err(anyhow::Error::from)
            .with_context(ctx)?;
        let names: Vec<&str> = full.iter_names().map(|n| n.as_str()).collect();
        check_phone_columns(cfg, names.iter().copied())?;
        if columns == Columns::PhonesOnly {
            lf = lf.select(
                cfg.phone_columns
                    .iter()
                    .map(|c| col(c.as_str()))
                    .collect::<Vec<_>>(),
            );
        }
        let schema = (*lf
            .collect_schema()
            .map_err(anyhow::Error::from)
            .with_context(ctx)?)
        .clone();
        let (tx, rx) = sync_channel::<PolarsResult<DataFrame>>(2);
        let on_error = tx.clone();
        let sink = lf
            .sink_batches(
                PlanCallback::new(move |df: DataFrame| Ok(tx.send(Ok(df)).is_err())),
                true,
                Some(frame_rows),
            )
            .map_err(anyhow::Error::from)
            .with_context(ctx)?;
        // Decoding starts at the first read: a reader opened for its schema alone costs nothing.
        let start = Box::new(move || {
            std::thread::Builder::new()
                .name("parquet-reader".into())
                .spawn(move || {
                    if let Err(e) = sink.collect_with_engine(Engine::Streaming) {
                        let _ = on_error.send(Err(e));
                    }
                })
                .map(|_| ())
        });
        Ok(InputReader {
            schema,
            source: Source::Parquet(ParquetSource {
                start: Some(start),
                frames: rx,
                path,
                records: metadata.num_rows as u64,
                types,
            }),
        })
    }

    pub(super) fn next_batch(&mut self) -> Result<Option<DataFrame>> {
        if let Some(start) = self.start.take() {
            start().with_context(|| format!("reading {}", self.path.display()))?;
        }
        loop {
            match self.frames.recv() {
                Ok(Ok(df)) if df.height() == 0 => continue,
                Ok(Ok(df)) => return Ok(Some(df)),
                Ok(Err(e)) => {
                    return Err(anyhow!(
                        "reading {} as Parquet: {}",
                        self.path.display(),
                        excerpt(&e.to_string())
                    ))
                }
                Err(_) => return Ok(None),
            }
        }
    }

    /// The rows the file's footer declares.
    pub(super) fn records(&self) -> u64 {
        self.records
    }

    /// The file's own types of the columns polars reads as others.
    pub(super) fn types(&self) -> &InputTypes {
        &self.types
    }
}
