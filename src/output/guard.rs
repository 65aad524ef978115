//! The rule that nothing a run writes is its input: the output, the output's temporary files
//! (this module's parent names them) and the state directory, compared with the input by
//! identity.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::output_dir;
use crate::input::input_file;

/// A file's identity: its device and inode, or, where nothing exists at the path yet, its
/// resolved path (symlinks and `..` resolved either way).
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    let path = resolved(path)?;
    Some(match std::fs::metadata(&path) {
        Ok(m) => Identity::Inode(m.dev(), m.ino()),
        Err(_) => Identity::Path(path),
    })
}

/// `path` as the kernel will find it once the directories it names are created: its longest
/// existing part canonical (symlinks resolved), the rest with `.` and `..` applied (a missing
/// `sub/..` is the directory `sub` would be created in, as `create_dir_all` then makes it).
fn resolved(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let absolute = std::env::current_dir().ok()?.join(path);
    let components: Vec<Component> = absolute.components().collect();
    let (mut out, rest) = (0..=components.len()).rev().find_map(|n| {
        let prefix: PathBuf = components[..n].iter().collect();
        std::fs::canonicalize(&prefix)
            .ok()
            .map(|c| (c, &components[n..]))
    })?;
    for component in rest {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    Some(out)
}

/// Refuses a job whose writing could touch its input: an output (or the temporary file it is
/// written to, or one a killed run left, which the next run removes) that is the input file,
/// through any path (symlinks, `..`, hard links, `-` for standard input), or a state directory
/// that is the input or holds it. Only this module writes outputs, and it names its temporary
/// files, so it owns the check; the state directory is checked here too, to keep the rule
/// "the input is never written" in one place.
pub fn refuse_writing_input(input: &Path, output: &Path, state_dir: &Path) -> Result<()> {
    let input = input_file(input);
    let Some(input_id) = identity(input).filter(|id| matches!(id, Identity::Inode(..))) else {
        // Nothing there: nothing to overwrite (opening it names the error).
        return Ok(());
    };
    if identity(output).as_ref() == Some(&input_id) {
        bail!(
            "output.path {} is the input file {}: the output would replace it; write the output elsewhere",
            output.display(),
            input.display()
        );
    }
    let file_name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let input_name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary =
        input_name.starts_with(&format!(".{file_name}.")) && input_name.ends_with(".tmp");
    if temporary && identity(output_dir(output)) == identity(output_dir(input)) {
        bail!(
            "input.path {} is named as a temporary file of output.path {}, which runs remove; rename the input",
            input.display(),
            output.display()
        );
    }
    if let (Some(state), Some(input)) = (resolved(state_dir), resolved(input)) {
        // The spool directory under it holds the tool's own copies of input objects.
        if input.starts_with(&state) && !input.starts_with(state.join(crate::storage::SPOOL_DIR)) {
            bail!(
                "state.dir {} is or holds the input file {}; the state directory is for the state alone",
                state_dir.display(),
                input.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn nothing_written_is_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("in.parquet"), b"x").unwrap();
        std::fs::create_dir(at("sub")).unwrap();
        std::os::unix::fs::symlink(at("in.parquet"), at("link.parquet")).unwrap();
        std::fs::write(at(".out.parquet.1.tmp"), b"x").unwrap();
        // (input, output, state directory, what the refusal names; "" when allowed)
        let cases: &[(&str, &str, &str, &str)] = &[
            ("in.parquet", "out.parquet", "state", ""),
            ("in.parquet", "in.parquet", "state", "is the input file"),
            (
                "in.parquet",
                "sub/../in.parquet",
                "state",
                "is the input file",
            ),
            ("in.parquet", "link.parquet", "state", "is the input file"),
            ("link.parquet", "in.parquet", "state", "is the input file"),
            (
                ".out.parquet.1.tmp",
                "out.parquet",
                "state",
                "temporary file",
            ),
            (".out.parquet.1.tmp", "sub/out.parquet", "state", ""),
            ("in.parquet", "out.parquet", ".", "state.dir"),
            ("in.parquet", "out.parquet", "in.parquet", "state.dir"),
            ("in.parquet", "out.parquet", "sub", ""),
            (
                "in.parquet",
                "missing/../in.parquet",
                "state",
                "is the input file",
            ),
            ("in.parquet", "out.parquet", "missing/..", "state.dir"),
            (
                "in.parquet",
                "missing/in.parquet",
                "missing/..",
                "state.dir",
            ),
            ("missing.parquet", "missing.parquet", "state", ""),
        ];
        for &(input, output, state, want) in cases {
            let got = super::refuse_writing_input(&at(input), &at(output), &at(state));
            match (want, got) {
                ("", Ok(())) => {}
                ("", Err(e)) => panic!("{input} {output} {state}: refused: {e}"),
                (want, Ok(())) => panic!("{input} {output} {state}: allowed, not `{want}`"),
                (want, Err(e)) => assert!(e.to_string().contains(want), "{e}"),
            }
        }
    }
}
