/**
 * Console sessions in the CMDB (no browser: see browser.test.ts for the pages): a session
 * survives a reopen of the database, ends at its expiry, at logout and when its token is revoked,
 * and only the session id's hash is stored. Plus the template layer's escaping.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { html, raw } from '../../src/console/html.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const path = join(dir.path, 'livery.db');
afterAll(() => dir.cleanup());

describe('console sessions', () => {
  it('survive a restart, and the database holds only the hash of the session id', () => {
    let cmdb = openCmdb(path);
    const { record } = cmdb.tokens.create('ops', 'operator');
    const id = cmdb.sessions.create(record.id, 60_000);
    const stored = JSON.stringify(cmdb.db.prepare('SELECT * FROM console_sessions').all());
    expect(stored).not.toContain(id);
    cmdb.close();
    cmdb = openCmdb(path);
    expect(cmdb.sessions.verify(id)).toMatchObject({ token: { name: 'ops', role: 'operator' } });
    cmdb.close();
  });

  it('end at expiry, at logout, and when the token is revoked', () => {
    const cmdb = openCmdb(path);
    try {
      const { record } = cmdb.tokens.create('short', 'reader');
      const now = Date.now();
      const expiring = cmdb.sessions.create(record.id, 1_000, now);
      expect(cmdb.sessions.verify(expiring, now + 999)).not.toBeNull();
      expect(cmdb.sessions.verify(expiring, now + 1_000)).toBeNull();
      const ended = cmdb.sessions.create(record.id, 60_000);
      cmdb.sessions.end(ended);
      expect(cmdb.sessions.verify(ended)).toBeNull();
      const revoked = cmdb.sessions.create(record.id, 60_000);
      expect(cmdb.sessions.verify(revoked)).not.toBeNull();
      cmdb.tokens.revoke(record.id);
      expect(cmdb.sessions.verify(revoked)).toBeNull();
      expect(cmdb.sessions.verify('not a session id')).toBeNull();
    } finally {
      cmdb.close();
    }
  });
});

describe('console templates', () => {
  it('escape every interpolation unless it is markup already', () => {
    const name = `<script>alert("x")</script>&'`;
    expect(html`<td title="${name}">${name}</td>`.text).toBe(
      '<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</td>',
    );
    expect(html`<ul>${['a<', 'b'].map((x) => html`<li>${x}</li>`)}</ul>`.text).toBe('<ul><li>a&lt;</li><li>b</li></ul>');
    expect(html`${null}${undefined}${false}${0}${raw('<b>')}`.text).toBe('0<b>');
  });
});
