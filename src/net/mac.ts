/**
 * MAC addresses are stored and compared in one canonical form: lower-case, colon-separated.
 * Operators paste them from switch consoles, BMCs and spreadsheets, so input accepts the
 * common spellings: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff and aabbccddeeff.
 */
const SPELLINGS = [
  /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/,
  /^([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})$/,
  /^([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/,
];

/** Returns the canonical form, or null when the text is not a MAC address. */
export function normalizeMac(text: string): string | null {
  const lower = text.trim().toLowerCase();
  for (const re of SPELLINGS) {
    const m = re.exec(lower);
    if (m) {
      // A mix of ':' and '-' in one address is a typo, not a spelling.
      if (/[:]/.test(lower) && /-/.test(lower)) return null;
      return m.slice(1, 7).join(':');
    }
  }
  return null;
}

/** The PXE/pxelinux spelling: 01-aa-bb-cc-dd-ee-ff (ARP type 1 prefix). */
export function pxelinuxMacName(mac: string): string {
  return `01-${mac.replaceAll(':', '-')}`;
}
