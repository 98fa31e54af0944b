//! `ptt-audit init [DIR]`: a starting point to edit: the baseline pack, an example
//! site policy and an example config file. Never overwrites anything.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ptt_audit::exit::Exit;

use super::ui::Ui;

/// The example site policy `init` writes beside the baseline.
pub const SITE_TEMPLATE: &str = include_str!("templates/site.toml");
/// The example config file `init` writes.
pub const CONFIG_TEMPLATE: &str = include_str!("templates/ptt-audit.toml");

/// What `ptt-audit init` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Folder to write into (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// The files `init` writes into `dir`, with their contents.
fn files(dir: &Path) -> [(PathBuf, &'static str); 3] {
    [
        (
            dir.join("policies").join("baseline.toml"),
            ptt_audit::policy::BASELINE,
        ),
        (dir.join("policies").join("site.toml"), SITE_TEMPLATE),
        (dir.join("ptt-audit.toml"), CONFIG_TEMPLATE),
    ]
}

/// Writes the starting files, or nothing at all when any of them exists already.
pub fn run(args: InitArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let files = files(&args.dir);
    let taken: Vec<String> = files
        .iter()
        .filter(|(path, _)| path.exists())
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !taken.is_empty() {
        anyhow::bail!(
            "init writes nothing over existing files; these exist already: {}",
            taken.join(", ")
        );
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // create_new: a file that appeared since the check above is not overwritten.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let listing: Vec<String> = files
        .iter()
        .map(|(p, _)| format!("  {}", p.display()))
        .collect();
    ui.print(&format!(
        "Wrote:\n{}\nNext: edit policies/site.toml, check it with `ptt-audit check-policies {}`, \
         then run `ptt-audit audit --config {}`.\n",
        listing.join("\n"),
        args.dir.join("policies").display(),
        args.dir.join("ptt-audit.toml").display(),
    ));
    Ok(Exit::Ok)
}
