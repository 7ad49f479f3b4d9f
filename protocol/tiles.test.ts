import { describe, expect, it } from 'vitest';
import { MerkleLog, leafHash } from './merkle.js';
import { decodeEntryBundle, encodeEntryBundle, EntryTooLargeError, formatTileIndex, parseTilePath, tileExists, tileHashes, tilePath, tilesForSize } from './tiles.js';

describe('tiles (c2sp.org/tlog-tiles)', () => {
  it('encodes tile indexes as in the spec', () => {
    expect(formatTileIndex(1234067)).toBe('x001/x234/067');
    expect(formatTileIndex(0)).toBe('000');
    expect(formatTileIndex(1000)).toBe('x001/000');
    expect(tilePath({ level: 0, index: 1234067, width: 5 })).toBe('tile/0/x001/x234/067.p/5');
    expect(tilePath({ level: 'entries', index: 2, width: 256 })).toBe('tile/entries/002');
  });

  it('parses only canonical tile paths', () => {
    expect(parseTilePath('0/x001/x234/067.p/5')).toEqual({ level: 0, index: 1234067, width: 5 });
    expect(parseTilePath('entries/000')).toEqual({ level: 'entries', index: 0, width: 256 });
    expect(parseTilePath('63/999')).toEqual({ level: 63, index: 999, width: 256 });
    for (const bad of ['64/000', '01/000', '0/1', '0/x000/001', '0/000.p/0', '0/000.p/256', '0/000.p/05', '0/001/002', 'data/000', '0/000/']) {
      expect(parseTilePath(bad), bad).toBeUndefined();
    }
  });

  it('lists the tiles of a tree as in the spec (70,000 leaves)', () => {
    const tiles = tilesForSize(70_000);
    const l0 = tiles.filter((t) => t.level === 0);
    expect(l0.filter((t) => t.width === 256)).toHaveLength(273);
    expect(l0.filter((t) => t.width < 256)).toEqual([{ level: 0, index: 273, width: 112 }]);
    expect(tiles.filter((t) => t.level === 1)).toEqual([{ level: 1, index: 0, width: 256 }, { level: 1, index: 1, width: 17 }]);
    expect(tiles.filter((t) => t.level === 2)).toEqual([{ level: 2, index: 0, width: 1 }]);
    expect(tilesForSize(256)).toEqual([{ level: 0, index: 0, width: 256 }, { level: 1, index: 0, width: 1 }]);
    expect(tilesForSize(0)).toEqual([]);
    expect(tileExists({ level: 1, index: 1, width: 17 }, 70_000)).toBe(true);
    expect(tileExists({ level: 1, index: 1, width: 18 }, 70_000)).toBe(false);
    expect(tileExists({ level: 0, index: 273, width: 256 }, 70_000)).toBe(false);
  });

  it('fills a level-1 tile with the roots of full level-0 tiles', () => {
    const log = new MerkleLog();
    for (let i = 0; i < 600; i++) log.append(leafHash(Buffer.from(`line ${i}`)));
    const hashRange = (s: number, e: number) => log.hashRange(s, e);
    const l1 = tileHashes(hashRange, 1, 0, 2);
    expect(l1.subarray(0, 32).equals(Buffer.from(log.hashRange(0, 256)))).toBe(true);
    expect(l1.subarray(32, 64).equals(Buffer.from(log.hashRange(256, 512)))).toBe(true);
    const l0 = tileHashes(hashRange, 0, 2, 88);
    expect(l0.subarray(87 * 32).equals(log.at(599)!)).toBe(true);
  });

  it('encodes entry bundles with uint16 lengths and refuses an entry over 65,535 bytes', () => {
    const bundle = encodeEntryBundle([Buffer.from('ab'), Buffer.alloc(0), Buffer.from('xyz')]);
    expect(bundle.toString('hex')).toBe('00026162' + '0000' + '000378797a');
    expect(decodeEntryBundle(bundle)!.map((b) => b.toString())).toEqual(['ab', '', 'xyz']);
    expect(decodeEntryBundle(bundle.subarray(0, 5))).toBeUndefined();
    expect(encodeEntryBundle([Buffer.alloc(65_535)])).toHaveLength(65_537);
    expect(() => encodeEntryBundle([Buffer.alloc(1), Buffer.alloc(65_536)], 512)).toThrow(EntryTooLargeError);
    try {
      encodeEntryBundle([Buffer.alloc(1), Buffer.alloc(65_536)], 512);
    } catch (err) {
      expect(err).toMatchObject({ entryIndex: 513, length: 65_536 });
    }
  });
});
