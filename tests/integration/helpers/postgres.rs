//! A private PostgreSQL cluster a test may stop and start.

use super::*;

/// A PostgreSQL server of the test's own, in a temporary directory, that the
/// test may stop and start without disturbing any other test.
pub struct PrivatePostgres {
    dir: std::path::PathBuf,
    pub port: u16,
    bin: std::path::PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (run scripts/services)")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("postgres").exists())
            .max()
            .expect("a PostgreSQL server binary");
        let dir = std::env::temp_dir().join(format!("jobsync-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pg = PrivatePostgres { dir, port, bin };
        if is_root() {
            run(Command::new("chown").arg("postgres:postgres").arg(&pg.dir));
        }
        run(pg
            .as_owner(&pg.bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(pg.dir.join("data")));
        pg.start_again();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Stops the server at once, as a crash or an outage would.
    pub fn stop(&self) {
        run(self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-w", "stop", "-D"])
            .arg(self.dir.join("data")));
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-w", "-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("start"));
    }

    fn as_owner(&self, program: &std::path::Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "stop", "-D"])
            .arg(self.dir.join("data"))
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
