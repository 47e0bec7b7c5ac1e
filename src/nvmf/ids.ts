/**
 * Names and identifiers: NQN rules (NVMe Base 2.0 §4.5 "NVMe Qualified Names"), Cairn's NQN
 * for a volume, and deterministic namespace identifiers (NGUID, UUID) and serial numbers, so
 * every gateway exporting a volume reports the same identity (hosts group paths by them).
 */
import { createHash } from 'node:crypto';

/** The well-known discovery subsystem NQN (NVMe-oF 1.1 §5). */
export const DISCOVERY_NQN = 'nqn.2014-08.org.nvmexpress.discovery';

/** Longest NQN in bytes (NVMe Base 2.0 §4.5: 223 bytes, UTF-8, NUL terminated in a 256-byte field). */
export const MAX_NQN_BYTES = 223;

/** True if `s` is a well-formed NQN: the "nqn.yyyy-mm.reverse.domain[:...]" or "nqn.2014-08.org.nvmexpress:uuid:..." form. */
export function isValidNqn(s: string): boolean {
  if (Buffer.byteLength(s) > MAX_NQN_BYTES || s.includes('\0')) return false;
  if (/^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)) return true;
  return /^nqn\.\d{4}-(0[1-9]|1[0-2])\.[A-Za-z0-9][A-Za-z0-9.-]*(:.+)?$/.test(s);
}

/** The NQN Cairn gives a volume's subsystem: `nqn.2024-01.io.cairn:<cluster>:<volume>`. Throws if too long. */
export function volumeNqn(cluster: string, volume: string): string {
  const nqn = `nqn.2024-01.io.cairn:${cluster}:${volume}`;
  if (!isValidNqn(nqn)) throw new Error(`not a valid NQN: ${nqn}`);
  return nqn;
}

function digest(...parts: (string | number)[]): Buffer {
  return createHash('sha256').update(parts.join('\0')).digest();
}

/** A 16-byte NGUID for namespace `nsid` of subsystem `nqn` (stable, unique per pair). */
export function deriveNguid(nqn: string, nsid: number): Buffer {
  return digest('nguid', nqn, nsid).subarray(0, 16);
}

/** A 16-byte RFC 9562 version-8 UUID for namespace `nsid` of subsystem `nqn`. */
export function deriveUuid(nqn: string, nsid: number): Buffer {
  const u = Buffer.from(digest('uuid', nqn, nsid).subarray(0, 16));
  u[6] = (u[6] & 0x0f) | 0x80; // version 8
  u[8] = (u[8] & 0x3f) | 0x80; // RFC variant
  return u;
}

/** Formats 16 bytes as a UUID string. */
export function uuidString(u: Buffer): string {
  const h = u.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A 20-character serial number for subsystem `nqn` (ASCII, the same on every gateway). */
export function deriveSerial(nqn: string): string {
  return digest('serial', nqn).toString('hex').slice(0, 20);
}

/** Writes `s` into `buf[off .. off+len)` as ASCII padded with spaces (Identify SN/MN/FR fields). */
export function putAscii(buf: Buffer, off: number, len: number, s: string): void {
  buf.fill(0x20, off, off + len);
  buf.write(s.replace(/[^\x20-\x7e]/g, '?').slice(0, len), off, len, 'latin1');
}

/** Writes `s` into `buf[off .. off+len)` as UTF-8 padded with NULs (NQN fields). */
export function putNqn(buf: Buffer, off: number, len: number, s: string): void {
  buf.fill(0, off, off + len);
  buf.write(s, off, len - 1, 'utf8');
}

/** Reads a NUL-terminated string from `buf[off .. off+len)`; undefined if not terminated. */
export function getNulString(buf: Buffer, off: number, len: number): string | undefined {
  const end = buf.indexOf(0, off);
  if (end < 0 || end >= off + len) return undefined;
  return buf.toString('utf8', off, end);
}
