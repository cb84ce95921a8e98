import Handlebars from 'handlebars';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TemplateStore } from '../../src/boot/index.js';
import { rootKeysRead } from '../../src/boot/template-reads.js';

const reads = (source: string) => {
  const keys = rootKeysRead(Handlebars.parse(source));
  return keys && [...keys].sort();
};

describe('the top-level keys a template reads', () => {
  it('are the heads of its paths, inside blocks and helper arguments too', () => {
    expect(reads('{{name}} {{image.version}}{{#if image.channel}} {{image.channel}}{{/if}}')).toEqual(['if', 'image', 'name']);
    expect(reads('{{#each reasons}}{{this}} {{../mac}}{{/each}}{{lookup labels "rack"}}')).toEqual(['each', 'labels', 'lookup', 'mac', 'reasons']);
    expect(reads('{{#with image}}{{name}}{{else}}{{hostname}}{{/with}}{{@root.bootif}}')).toEqual(['bootif', 'hostname', 'image', 'name', 'with']);
  });

  it('are all of them when the template names the root as a whole', () => {
    for (const source of ['{{this}}', '{{#if x}}{{this}}{{/if}}', '{{lookup . "mac"}}', '{{#each this}}{{@key}}{{/each}}', '{{#each reasons}}{{@root}}{{/each}}', '{{#with image}}{{../this}}{{/with}}']) {
      expect(reads(source), source).toBeNull();
    }
  });

  it('a template that walks the whole root still sees every key, quoted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'livery-reads-'));
    mkdirSync(join(dir, 'ipxe'));
    writeFileSync(join(dir, 'ipxe', 'all.ipxe'), '{{#each this}}{{@key}}={{this}};{{/each}}\n');
    writeFileSync(join(dir, 'ipxe', 'some.ipxe'), '{{mac}} {{#each labels}}{{@key}}={{this}};{{/each}}\n');
    const templates = new TemplateStore(dir, undefined, { mac: 'm', labels: {} }, 60_000);
    expect(templates.render('ipxe/all.ipxe', { mac: '02:00:00:00:00:01', hostname: 'a #b', extra: 1 })).toBe('mac=02:00:00:00:00:01;hostname=a ${}#b;extra=1;\n');
    // Keys it does not read are neither copied nor quoted: one iPXE cannot carry does not fail it.
    expect(templates.render('ipxe/some.ipxe', { mac: 'm', labels: { rack: '-r1' }, vars: { x: '${y}' } })).toBe('m rack=${}-r1;\n');
  });
});
