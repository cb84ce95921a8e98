# livery: `make run` starts it, `make test` proves it. Both install what is missing first.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.installed
NATIVE := native/build/Release/tftp_pump.node native/build/Release/file_sender.node native/build/Release/datagram.node native/build/Release/data_lock.node

# Debian packages by purpose (see README "Dependencies").
APT_RUN   := ipxe shim-signed grub-efi-amd64-signed build-essential python3 ipmitool
APT_DEB   := dpkg-dev
APT_TEST  := $(APT_RUN) $(APT_DEB) systemd curl iproute2 isc-dhcp-client udhcpc atftp tftp-hpa kea-admin \
             qemu-system-x86 ovmf mmdebstrap debootstrap squashfs-tools busybox-static cpio zstd xz-utils kmod nftables openssl \
             openipmi redfishtool dnsmasq-base isc-dhcp-relay chromium sbsigntool postgresql-15
APT_BENCH := $(APT_TEST) nginx-light kea-dhcp4-server tftpd-hpa wrk tcpdump

DATA_DIR ?= ./var
# The console's browser tests drive Debian's chromium (puppeteer-core): never a downloaded browser.
export PUPPETEER_SKIP_DOWNLOAD := 1
BENCH ?=

.PHONY: run test check bench e2e fuzz build deb deps-run deps-deb deps-test deps-bench clean typecheck

run: deps-run build
	node dist/cli/main.js serve --data-dir $(DATA_DIR)

# `make test`: the unit suite; the server tests again with the CMDB on PostgreSQL (vitest.pg.config.ts,
# a throwaway cluster); then the end-to-end suite (test/e2e), real VMs network-booting from livery,
# reusing that build rather than running `$(MAKE) e2e` and compiling twice.
test: deps-test build check
	npx vitest run
	npx vitest run --config vitest.pg.config.ts
	npx vitest run --config vitest.e2e.config.ts

e2e: deps-test build
	npx vitest run --config vitest.e2e.config.ts

# Long mutation-fuzzing run of every parser of outside input (the suite runs a short one).
FUZZ_RUNS ?= 100000
fuzz: deps-test build
	FUZZ_RUNS=$(FUZZ_RUNS) npx vitest run test/robustness/fuzz.test.ts --testTimeout=0

# The Debian package (packaging/, README "Install as a Debian package") → build/deb/livery_<version>_<arch>.deb
deb: deps-deb build
	packaging/build-deb.sh build/deb

bench: deps-bench build
	npx tsx bench/run.ts $(BENCH)

build: $(NODE_MODULES_STAMP) $(NATIVE)
	npx tsc -p tsconfig.json
	chmod +x dist/cli/main.js

# The native addons (native/: the TFTP data path, artifact bodies by sendfile, the DHCP socket, the data dir lock), built by npm's own node-gyp
# against the headers of the Node that runs livery (official builds and Debian's both keep them
# under <prefix>/include/node). One node-gyp run builds them all.
$(NATIVE) &: native/tftp_pump.c native/file_sender.c native/datagram.c native/data_lock.c native/napi_helpers.h native/engine.h native/binding.gyp $(NODE_MODULES_STAMP)
	npm run --silent build:native -- --nodedir="$$(node -p 'path.dirname(path.dirname(process.execPath))')"

# Static checks, in seconds, before any test runs: the linter (biome.jsonc: defects, not style)
# and no import cycle in src/, type-only imports included (.madgerc).
check: $(NODE_MODULES_STAMP)
	npm run --silent check

# The sources, tests and benchmarks; the same as `npm run typecheck`.
typecheck: $(NODE_MODULES_STAMP)
	npm run --silent typecheck

deps-run: node-check
	scripts/ensure-apt.sh $(APT_RUN)
deps-deb: node-check
	scripts/ensure-apt.sh $(APT_DEB)
deps-test: node-check
	scripts/ensure-apt.sh $(APT_TEST)
deps-bench: node-check
	scripts/ensure-apt.sh $(APT_BENCH)

.PHONY: node-check
node-check:
	@node -e 'const [M]=process.versions.node.split(".").map(Number); if (M < 20) { console.error("livery needs Node.js 20 or newer, found " + process.version); process.exit(1) }'

# better-sqlite3 builds from source here (no prebuilt downloads): about 80 s the first time.
# `npm install` rather than `npm ci`: npm 11 leaves other platforms' optional packages
# (rollup's) out of the lock file it writes and then refuses that same file in `npm ci`.
$(NODE_MODULES_STAMP): package.json package-lock.json
	npm install --no-fund --no-audit
	touch $@

clean:
	rm -rf dist build bench/work test/.tmp native/build
