import { describe, expect, it } from 'vitest';
import type { LivEvent } from '../../src/cmdb/types.js';
import { traceBoots } from '../../src/boot/trace.js';
import { machineBoots } from '../../src/boot/machine-trace.js';
import { describeEngines } from '../helpers/cmdb-engines.js';

/**
 * Boot grouping with the DHCP traffic a real network boot makes (event sequences as recorded in
 * the end-to-end VM boots): the firmware, iPXE, the initramfs and the booted system all DISCOVER.
 */
let id = 0;
const event = (type: string, detail: Record<string, unknown> = {}, imageId: string | null = null): LivEvent => ({
  id: ++id,
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, id)).toISOString(),
  type,
  mac: '52:54:00:00:00:01',
  machineId: 1,
  imageId,
  detail,
});
/** A DISCOVER as the server records it: dhcp-offer when answered, dhcp-discover when not. */
const discover = (vendorClass: string | null, userClass: string[] = [], type = 'dhcp-offer') => event(type, { vendorClass, userClass });
const ipxe = () => discover('PXEClient:Arch:00007:UNDI:003010', ['iPXE']);
const artifact = (role: string) => event('artifact', { role }, 'img-1');
const rest = () => [
  event('ipxe-script', {}, 'img-1'),
  artifact('kernel'),
  artifact('initrd'),
  discover('livery-initrd'), // the initramfs's udhcpc
  artifact('rootfs'),
  discover(null), // systemd-networkd in the booted image
  event('booted', {}, 'img-1'),
];

describe('traceBoots', () => {
  it('keeps the DHCP of the initramfs and of the booted system in the boot they belong to', () => {
    const boots = traceBoots([ipxe(), ...rest()]);
    expect(boots).toHaveLength(1);
    expect(boots[0]).toMatchObject({ complete: true, reached: 'booted', imageId: 'img-1' });
  });

  it('keeps the TFTP-loaded iPXE in the boot of the firmware that fetched it', () => {
    const boots = traceBoots([discover('PXEClient:Arch:00007:UNDI:003016'), event('tftp', { file: 'snponly.efi' }), ipxe(), ...rest()]);
    expect(boots).toHaveLength(1);
    expect([...new Set(boots[0]!.stages.map((s) => s.stage))]).toEqual(['dhcp', 'tftp', 'script', 'kernel', 'initrd', 'rootfs', 'booted']);
  });

  it('starts a new boot when firmware DISCOVERs again after the boot got further (a reboot)', () => {
    const boots = traceBoots([ipxe(), event('ipxe-script', {}, 'img-1'), artifact('kernel'), ipxe(), ...rest()]);
    expect(boots.map((b) => [b.reached, b.complete, b.stoppedBefore])).toEqual([
      ['kernel', false, 'initrd'],
      ['booted', true, null],
    ]);
  });

  it("ends a boot with the agent's health verdict; the next boot's verdict stays with that boot", () => {
    const failing = [{ check: 'unit nginx.service', output: 'failed' }];
    const boots = traceBoots([ipxe(), ...rest(), event('unhealthy', { failing }, 'img-1'), ipxe(), ...rest(), event('healthy', { failing: [] }, 'img-1')]);
    expect(boots.map((b) => [b.reached, b.complete, b.stages.at(-1)!.stage])).toEqual([
      ['unhealthy', true, 'unhealthy'],
      ['healthy', true, 'healthy'],
    ]);
    expect(boots[0]!.stages.at(-1)!.detail).toEqual({ failing });
  });

  it('a second verdict after a boot already judged starts a new entry rather than rewriting the first', () => {
    const boots = traceBoots([ipxe(), ...rest(), event('healthy', {}, 'img-1'), event('unhealthy', {}, 'img-1')]);
    expect(boots.map((b) => b.stages.map((s) => s.stage).at(-1))).toEqual(['healthy', 'unhealthy']);
  });

  it('starts a new boot at a DISCOVER left unanswered too (the pool was full, say)', () => {
    const unanswered = discover('PXEClient:Arch:00000:UNDI:002001', [], 'dhcp-discover');
    const boots = traceBoots([ipxe(), event('ipxe-script', {}, 'img-1'), artifact('kernel'), unanswered]);
    expect(boots.map((b) => [b.reached, b.stages.map((s) => s.event)])).toEqual([
      ['kernel', ['dhcp-offer', 'ipxe-script', 'artifact']],
      ['dhcp', ['dhcp-discover']],
    ]);
  });
});

/**
 * Where a stopped boot's client stopped, in words: the events as the DHCP, TFTP and HTTP servers
 * record them (the detail each writes), in the sequences real clients left.
 */
describe('lastStep', () => {
  const proxyEvent = (type: string) => event(type, { firmware: 'ipxe', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: ['iPXE'], relay: null, next: { kind: 'script' } });

  it("says an iPXE that kept asking for ProxyDHCP did not take livery's answers, and that nothing followed", () => {
    // iPXE before livery named itself as next-server: one ProxyDHCP offer, then its REQUEST to port 4011 retried.
    const boots = traceBoots([proxyEvent('dhcp-proxy-discover'), ...Array.from({ length: 4 }, () => proxyEvent('dhcp-proxy-request'))]);
    expect(boots).toHaveLength(1);
    expect(boots[0]).toMatchObject({ reached: 'dhcp', stoppedBefore: 'tftp', complete: false });
    expect(boots[0]!.lastStep).toBe("client retried its ProxyDHCP request (port 4011) 4 times: it did not take livery's answers; no TFTP or HTTP request followed");
  });

  it('says a firmware that fetched its loader over TFTP never asked for the script', () => {
    const boots = traceBoots([discover('PXEClient:Arch:00007:UNDI:003016'), event('tftp', { file: 'snponly.efi', result: 'ok', bytes: 1 })]);
    expect(boots[0]!.lastStep).toBe('client fetched snponly.efi over TFTP (ok); no HTTP request for the iPXE script followed');
  });

  it('counts an unanswered DISCOVER repeated, and only the repeats at the end', () => {
    const unanswered = () => discover('PXEClient:Arch:00000:UNDI:002001', [], 'dhcp-discover');
    const boots = traceBoots([unanswered(), unanswered(), unanswered()]);
    expect(boots[0]!.lastStep).toBe("client's DHCP discover went unanswered 3 times; no TFTP or HTTP request followed");
    const kernelOnly = traceBoots([ipxe(), event('ipxe-script', { template: 'ipxe/boot.ipxe' }, 'img-1'), artifact('kernel'), artifact('initrd')]);
    expect(kernelOnly[0]!.lastStep).toBe('client fetched the initrd; no rootfs download followed');
  });

  it('says nothing about a boot that phoned home', () => {
    expect(traceBoots([ipxe(), ...rest()])[0]!.lastStep).toBeNull();
  });
});

describeEngines('machineBoots', (rig) => {
  it('orders a machine’s events by when the doors saw them: a script event committed after the kernel fetch another process served still comes first', () => {
    const cmdb = rig().open();
    try {
      const mac = '52:54:00:00:07:01';
      const machine = cmdb.machines.create({ macs: [mac] });
      const t0 = Date.UTC(2026, 0, 1);
      const at = (s: number) => t0 + s * 1000;
      cmdb.tx(() => {
        cmdb.events.add({ type: 'dhcp-offer', mac, machineId: machine.id, at: at(0), detail: { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: ['iPXE'] } });
        // The kernel's event lands first, the script's (served a second earlier) after it.
        cmdb.events.add({ type: 'artifact', mac, machineId: machine.id, at: at(2), detail: { role: 'kernel' } });
        cmdb.events.add({ type: 'ipxe-script', mac, machineId: machine.id, at: at(1) });
      });
      expect(machineBoots(cmdb, machine).at(-1)!.stages.map((s) => s.stage)).toEqual(['dhcp', 'script', 'kernel']);
    } finally {
      cmdb.close();
    }
  });
});
