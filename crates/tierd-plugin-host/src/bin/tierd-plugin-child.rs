//! The isolated-mode child for this crate's tests: the same loop `tierd plugin-host` runs,
//! taking `plugin-host --library PATH` like it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let library = match args.as_slice() {
        [cmd, flag, path] if cmd == "plugin-host" && flag == "--library" => PathBuf::from(path),
        _ => {
            eprintln!("usage: tierd-plugin-child plugin-host --library PATH");
            return ExitCode::from(2);
        }
    };
    match tierd_plugin_host::child::serve_stdio(&library) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plugin host child: {e}");
            ExitCode::from(1)
        }
    }
}
