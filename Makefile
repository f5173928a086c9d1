# The two commands of the README, and the targets beside them. Each installs the system packages
# it needs first (only those missing).

.PHONY: test bench soak check fmt

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
	cargo bench --locked -p backoffice --bench pages

# Long fault runs; make test runs a short version of each.
soak:
	./deploy/dev/install-packages.sh test
	KIOSK_CRASH_KILLS=300 cargo test --locked -p kiosk --test crash -- --nocapture

# Formatting and lints, as CI runs them.
check:
	./deploy/dev/install-packages.sh test
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all
