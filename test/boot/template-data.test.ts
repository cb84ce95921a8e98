import { describe, expect, it } from 'vitest';
import { sampleTemplateData } from '../../src/boot/index.js';
import { resolveConfig } from '../../src/config/index.js';

describe('template data: the server and the paths under it', () => {
  it.each(['http://10.0.0.1:8080', 'https://boot.example/pxe', 'http://BOOT.example:80/a%20b/', 'https://[2001:db8::1]/x/y'])('%s: host, port and paths as a URL parser reads them', (publicUrl) => {
    const data = sampleTemplateData(resolveConfig({ dataDir: '/nonexistent', http: { listen: '127.0.0.1:8080', publicUrl } }));
    const server = new URL(data.server);
    expect([data.serverHost, data.serverPort]).toEqual([server.hostname, server.port || (server.protocol === 'https:' ? '443' : '80')]);
    const path = (url: string) => new URL(url).pathname + new URL(url).search;
    expect(data.kernelPath).toBe(path(data.kernelUrl!));
    expect(data.initrdPath).toBe(path(data.initrdUrl!));
    expect(data.grubPath).toMatch(/\/grub\/grub\.cfg-01-02-00-00-00-00-01$/);
    expect(data.grubPath).toBe(path(`${data.server}/grub/grub.cfg-01-02-00-00-00-00-01`));
  });
});
