// Writes /etc/livery/livery.toml for the Debian package from README's configuration reference,
// so the installed file documents exactly the keys and defaults the README does. Every key is
// commented out (the defaults apply) except dataDir, which the service's sandbox fixes.
// Usage: node packaging/conffile.mjs README.md > livery.toml
import { readFileSync } from 'node:fs';

const readme = readFileSync(process.argv[2], 'utf8');
const section = readme.slice(readme.indexOf('\n## Configuration\n'));
const block = /```toml\n([\s\S]*?)```/.exec(section);
if (!block || !section.startsWith('\n## Configuration\n')) {
  console.error('conffile.mjs: no ```toml block under "## Configuration" in the README');
  process.exit(1);
}
const lines = block[1].trimEnd().split('\n');
if (!lines[0].startsWith('dataDir =')) {
  console.error(`conffile.mjs: the reference should begin with dataDir, not ${JSON.stringify(lines[0])}`);
  process.exit(1);
}

const header = `# livery's configuration (livery serve, backup and restore read it; see
# /usr/share/doc/livery/README.md, "Configuration"). Lines starting with "#" show each key with
# its default: uncomment a key, and the [section] line above it, to change it.
# Check the result with: livery serve --check-config
# A rack-facing start: in [http] listen = "0.0.0.0:8080" and publicUrl = "http://10.0.0.1:8080",
# in [tftp] listen = "0.0.0.0:69", in [dhcp] enabled = true, interface = "eno1", address = "10.0.0.1".

# The service may write only here (ReadWritePaths= in livery.service).
dataDir = "/var/lib/livery"       # livery.db, blobs/, tftp/, cache/, serve.lock
`;
process.stdout.write(`${header}\n${lines.slice(1).map((line) => `# ${line}`).join('\n')}\n`);
