# The two commands of the README, and the targets beside them. Each installs the system packages
# it needs first (only those missing).

.PHONY: demo test bench soak check fmt packages

# The whole system on this machine: a back-office with a sample city, a kiosk with a simulated
# card reader (a window when $$DISPLAY is set, text otherwise), keys to tap cards. Ctrl-C stops it.
demo:
	./deploy/dev/install-packages.sh demo
	./deploy/demo/demo.sh

# Every test of the workspace; fails if any test fails or is skipped. The back-office's tests
# need PostgreSQL on 127.0.0.1:5432 (CANTEEN_TEST_POSTGRES_URL): started here if none answers.
test:
	./deploy/dev/install-packages.sh test
	./deploy/dev/start-pcscd.sh
	./deploy/dev/start-postgres.sh
	./deploy/dev/run-tests.sh

# Benchmarks of DESIGN.md's targets; results go to BENCHMARKS.md by hand, with the machine.
bench:
	./deploy/dev/install-packages.sh bench
	./deploy/dev/start-pcscd.sh
	./deploy/dev/start-postgres.sh
	cargo bench --locked -p proto --bench records
	cargo bench --locked -p kiosk --bench tap
	cargo bench --locked -p kiosk --bench ui
	cargo bench --locked -p hardware --bench reader
	cargo bench --locked -p backoffice --bench backoffice
	cargo bench --locked -p backoffice --bench reconcile
	cargo bench --locked -p tests --bench sync
	cargo bench --locked -p backoffice --bench pages

# Long fault runs; make test runs a short version of each.
soak:
	./deploy/dev/install-packages.sh test
	KIOSK_CRASH_KILLS=300 cargo test --locked -p kiosk --test crash -- --nocapture
	./deploy/dev/start-postgres.sh
	SYNC_SOAK_TAPS=5000 cargo test --locked -p tests --test sync_faults -- --nocapture

# Formatting and lints, as CI runs them, and the kiosk's build option for screens without X.
check:
	./deploy/dev/install-packages.sh test
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo build --locked -p kiosk --features kms --bin kiosk

fmt:
	cargo fmt --all

# The Debian packages of kiosk and backoffice, from a release build, into target/debian.
packages:
	./deploy/dev/install-packages.sh demo
	cargo build --release --locked -p kiosk -p backoffice
	./deploy/package.sh kiosk target/release target/debian
	./deploy/package.sh backoffice target/release target/debian
