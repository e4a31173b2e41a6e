//! The tree stored as C2SP `tlog-tiles`: tiles of height 8, each holding up
//! to 256 consecutive hashes of one level. Level 0 holds leaf hashes; level
//! `L` holds the roots of the 256^L-leaf subtrees. A partial tile (width
//! below 256) is the right edge of the tree and grows until it is full.

use std::collections::HashMap;

use crate::merkle::{Hash, NodeSource, ProofError, fold};

/// Hashes per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;

/// One tile: its level, its index along that level and how many hashes it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    pub level: u8,
    pub index: u64,
}

/// A tile as named by a `tlog-tiles` path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// `None` for an entry bundle (`tile/entries/…`).
    pub level: Option<u8>,
    pub index: u64,
    /// 1–255 for a partial tile, 256 for a full one.
    pub width: u64,
}

impl TilePath {
    /// Parses the part after `tile/`: `0/x001/234`, `1/005.p/17`, `entries/000`.
    pub fn parse(path: &str) -> Result<TilePath, String> {
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts.len() < 2 {
            return Err("a tile path is LEVEL/INDEX, with INDEX in groups of three digits".into());
        }
        let level = match parts[0] {
            "entries" => None,
            l => {
                let level: u8 = parse_digits(l, 2)
                    .ok_or_else(|| format!("tile level {l:?} is not a number from 0 to 63"))?
                    .try_into()
                    .map_err(|_| "tile level too large".to_owned())?;
                if level > 63 {
                    return Err(format!("tile level {level} is out of range"));
                }
                Some(level)
            }
        };
        let mut width = TILE_WIDTH;
        let last = parts.len() - 1;
        if parts.len() >= 3 && parts[last - 1].ends_with(".p") {
            width = parse_digits(parts[last], 3)
                .filter(|w| (1..TILE_WIDTH).contains(w))
                .ok_or_else(|| format!("partial width {:?} must be 1 to 255", parts[last]))?;
            parts[last - 1] = parts[last - 1].trim_end_matches(".p");
            parts.pop();
        }
        let groups = &parts[1..];
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let is_last = i == groups.len() - 1;
            let digits = if is_last {
                *g
            } else {
                g.strip_prefix('x')
                    .ok_or_else(|| format!("index group {g:?} must start with x"))?
            };
            if digits.len() != 3 {
                return Err(format!("index group {g:?} must have exactly three digits"));
            }
            let n = parse_digits(digits, 3)
                .ok_or_else(|| format!("index group {g:?} is not digits"))?;
            index = index
                .checked_mul(1000)
                .and_then(|v| v.checked_add(n))
                .ok_or_else(|| "tile index too large".to_owned())?;
        }
        let tile = TilePath {
            level,
            index,
            width,
        };
        // The canonical path has no leading x000 groups.
        if tile.to_path() != path {
            return Err(format!(
                "{path:?} is not the canonical form of this tile's path"
            ));
        }
        Ok(tile)
    }

    /// The path after `tile/`.
    pub fn to_path(&self) -> String {
        let level = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_owned(),
        };
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let mut out = level;
        for (i, g) in groups.iter().rev().enumerate() {
            out.push('/');
            if i < groups.len() - 1 {
                out.push('x');
            }
            out.push_str(&format!("{g:03}"));
        }
        if self.width < TILE_WIDTH {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }
}

fn parse_digits(s: &str, max_len: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The tiles a tree of `size` leaves has at each level, with their widths.
pub fn tiles_of(size: u64) -> Vec<(TileId, u64)> {
    let mut out = Vec::new();
    let mut n = size;
    let mut level = 0u8;
    while n > 0 {
        for index in 0..n.div_ceil(TILE_WIDTH) {
            let width = (n - index * TILE_WIDTH).min(TILE_WIDTH);
            out.push((TileId { level, index }, width));
        }
        n /= TILE_WIDTH;
        level += 1;
    }
    out
}

/// The right edge of the tree: the partial tile of every level, which is all
/// the writer needs to keep in memory to extend the tree.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    size: u64,
    /// `levels[L]`: the hashes of level `L`'s last, incomplete tile.
    levels: Vec<Vec<Hash>>,
    /// Tiles completed since the last `take_full`.
    full: Vec<(TileId, Vec<Hash>)>,
}

impl Edge {
    /// Rebuilds the edge of a tree of `size` leaves from its stored tiles.
    pub fn load(size: u64, tiles: &HashMap<TileId, Vec<Hash>>) -> Result<Edge, String> {
        let mut levels = Vec::new();
        let mut n = size;
        let mut level = 0u8;
        while n > 0 {
            let width = (n % TILE_WIDTH) as usize;
            let index = n / TILE_WIDTH;
            let hashes = if width == 0 {
                Vec::new()
            } else {
                let tile = tiles
                    .get(&TileId { level, index })
                    .ok_or_else(|| format!("tile {level}/{index} of the tree's edge is missing"))?;
                if tile.len() < width {
                    return Err(format!(
                        "tile {level}/{index} holds {} hashes, the tree needs {width}",
                        tile.len()
                    ));
                }
                tile[..width].to_vec()
            };
            levels.push(hashes);
            n /= TILE_WIDTH;
            level += 1;
        }
        Ok(Edge {
            size,
            levels,
            full: Vec::new(),
        })
    }

    /// The edge tiles a tree of `size` needs to be loaded.
    pub fn tiles_needed(size: u64) -> Vec<TileId> {
        let mut out = Vec::new();
        let mut n = size;
        let mut level = 0u8;
        while n > 0 {
            if !n.is_multiple_of(TILE_WIDTH) {
                out.push(TileId {
                    level,
                    index: n / TILE_WIDTH,
                });
            }
            n /= TILE_WIDTH;
            level += 1;
        }
        out
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root of the tree so far. Every node of the tree's compact range lies
    /// in one of the edge's tiles, so nothing else is needed.
    pub fn root(&self) -> Hash {
        let mut set = TileSet::default();
        for (level, hashes) in self.levels.iter().enumerate() {
            let index = (self.size >> (TILE_HEIGHT * level as u32)) / TILE_WIDTH;
            set.tiles.insert(
                TileId {
                    level: level as u8,
                    index,
                },
                hashes.clone(),
            );
        }
        crate::merkle::tree_root(&set, self.size).expect("the edge holds the compact range")
    }

    /// The edge's tiles with their hashes, lowest level first (empty ones left out).
    pub fn partial_tiles(&self) -> Vec<(TileId, &[Hash])> {
        self.levels
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
            .map(|(level, hashes)| {
                let index = (self.size >> (TILE_HEIGHT * level as u32)) / TILE_WIDTH;
                (
                    TileId {
                        level: level as u8,
                        index,
                    },
                    hashes.as_slice(),
                )
            })
            .collect()
    }

    /// The tiles that became full since the last call, to be stored.
    pub fn take_full(&mut self) -> Vec<(TileId, Vec<Hash>)> {
        std::mem::take(&mut self.full)
    }

    /// The hashes of `id` if it is one of the edge's (incomplete) tiles.
    pub fn partial(&self, id: TileId) -> Option<&[Hash]> {
        let hashes = self.levels.get(id.level as usize)?;
        let level_size = self.size >> (TILE_HEIGHT * id.level as u32);
        (!hashes.is_empty() && level_size / TILE_WIDTH == id.index).then_some(hashes.as_slice())
    }

    /// Appends one leaf hash; records in `changed` every tile it touched.
    pub fn push(&mut self, leaf: Hash, changed: &mut Vec<TileId>) {
        let mut hash = leaf;
        let mut level = 0usize;
        let mut n = self.size;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let id = TileId {
                level: level as u8,
                index: n / TILE_WIDTH,
            };
            if changed.last() != Some(&id) && !changed.contains(&id) {
                changed.push(id);
            }
            self.levels[level].push(hash);
            if self.levels[level].len() < TILE_WIDTH as usize {
                break;
            }
            // The tile is full: its root moves up into the next level's tile.
            hash = fold(&self.levels[level]);
            self.full
                .push((id, std::mem::take(&mut self.levels[level])));
            n /= TILE_WIDTH;
            level += 1;
        }
        self.size += 1;
    }
}

/// Tiles fetched from storage, used as the source of perfect-subtree hashes.
#[derive(Debug, Default)]
pub struct TileSet {
    pub tiles: HashMap<TileId, Vec<Hash>>,
}

/// The tile and the run of hashes in it that make up node (`height`, `index`).
pub fn node_location(height: u32, index: u64) -> (TileId, usize, usize) {
    let level = height / TILE_HEIGHT;
    let rest = height % TILE_HEIGHT;
    let first = index << rest;
    let tile = TileId {
        level: level as u8,
        index: first / TILE_WIDTH,
    };
    let offset = (first % TILE_WIDTH) as usize;
    (tile, offset, 1usize << rest)
}

impl NodeSource for TileSet {
    fn node(&self, height: u32, index: u64) -> Result<Hash, ProofError> {
        let (tile, offset, count) = node_location(height, index);
        let hashes = self
            .tiles
            .get(&tile)
            .filter(|h| h.len() >= offset + count)
            .ok_or(ProofError::Missing { height, index })?;
        Ok(fold(&hashes[offset..offset + count]))
    }
}

/// A node source that answers zeros and notes which tiles it was asked for:
/// running a proof against it first tells which tiles to fetch.
#[derive(Debug, Default)]
pub struct TileWants {
    wanted: std::sync::Mutex<Vec<TileId>>,
}

impl TileWants {
    pub fn into_tiles(self) -> Vec<TileId> {
        let mut v = self.wanted.into_inner().unwrap_or_else(|e| e.into_inner());
        v.sort_by_key(|t| (t.level, t.index));
        v.dedup();
        v
    }
}

impl NodeSource for TileWants {
    fn node(&self, height: u32, index: u64) -> Result<Hash, ProofError> {
        let (tile, _, _) = node_location(height, index);
        self.wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tile);
        Ok([0; 32])
    }
}

/// Hashes a tile's bytes (concatenated 32-byte hashes) into hashes.
pub fn split_hashes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32-byte chunk"))
            .collect(),
    )
}

/// Concatenates hashes into a tile's bytes.
pub fn join_hashes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{MemoryTree, inclusion_proof, leaf_hash, tree_root};

    #[test]
    fn paths_are_canonical() {
        let cases = [
            ("0/000", Some(0), 0, 256),
            ("0/x001/234", Some(0), 1234, 256),
            ("1/x001/x234/067.p/8", Some(1), 1_234_067, 8),
            ("entries/005.p/255", None, 5, 255),
        ];
        for (path, level, index, width) in cases {
            let t = TilePath::parse(path).unwrap();
            assert_eq!(
                t,
                TilePath {
                    level,
                    index,
                    width
                }
            );
            assert_eq!(t.to_path(), path);
        }
        for bad in [
            "0/1",
            "0/x000/001",
            "0/001.p/0",
            "0/001.p/256",
            "64/000",
            "0/abc",
            "0",
            "0/000/",
            "-1/000",
            "0/x1234/000",
            "0/001.p/08",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn the_edge_writes_tiles_that_serve_every_proof() {
        let mut edge = Edge::default();
        let mut memory = MemoryTree::default();
        let mut stored: HashMap<TileId, Vec<Hash>> = HashMap::new();
        let n = 256 * 256 + 300;
        for i in 0..n as u32 {
            let leaf = leaf_hash(&i.to_le_bytes());
            memory.push(leaf);
            let mut changed = Vec::new();
            edge.push(leaf, &mut changed);
            for (id, hashes) in edge.take_full() {
                stored.insert(id, hashes);
            }
            for id in changed {
                if let Some(hashes) = edge.partial(id) {
                    stored.insert(id, hashes.to_vec());
                }
            }
        }
        let tiles = TileSet { tiles: stored };
        assert_eq!(tree_root(&tiles, n).unwrap(), memory.root());
        for (index, size) in [(0, 1), (5, 300), (255, 256), (65_535, 65_600), (65_800, n)] {
            assert_eq!(
                inclusion_proof(&tiles, index, size).unwrap(),
                inclusion_proof(&memory, index, size).unwrap()
            );
        }
        assert_eq!(edge.root(), memory.root());
        let reloaded = Edge::load(n, &tiles.tiles).unwrap();
        assert_eq!(reloaded.levels, edge.levels);
    }
}
