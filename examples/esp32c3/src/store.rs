//! Persistent store: a wear-levelled key-value map (sequential-storage) in the `nvs` data partition of
//! the ESP32-C3's flash (esp-storage).
//!
//! The core's records can be larger than one 4 KiB flash page, so each slot is stored as chunks of
//! [`CHUNK`] bytes under keys `[slot, chunk]` plus a length item `[slot, LEN_KEY]` written last. A torn
//! write leaves a length that disagrees with the chunks, which the core's record checksum rejects, and
//! the engine alternates between two slots per record kind, so the previous good copy survives.

use core::ops::Range;

use embassy_embedded_hal::adapter::BlockingAsync;
use esp_bootloader_esp_idf::partitions::{
    self, DataPartitionSubType, PARTITION_TABLE_MAX_LEN, PartitionType,
};
use esp_storage::FlashStorage;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

/// Bytes per stored chunk (fits a flash page with headers to spare).
pub const CHUNK: usize = 1024;
/// Second key byte of a slot's length item.
const LEN_KEY: u8 = 0xFF;
/// Where the default ESP-IDF partition table puts `nvs` (used when the table cannot be read).
const DEFAULT_NVS: Range<u32> = 0x9000..0xF000;

type Flash = BlockingAsync<FlashStorage<'static>>;
type Map = MapStorage<[u8; 2], Flash, Cache<Uncached, Uncached, Uncached, [u8; 2]>>;

/// Errors of the flash store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The flash or the map layer failed.
    Flash,
    /// The caller's buffer is smaller than the stored value.
    BufferTooSmall,
    /// The stored chunks do not add up to the stored length (torn write).
    Corrupt,
}

/// The flash-backed key-value store.
pub struct FlashStore {
    map: Map,
    scratch: [u8; CHUNK + 16],
}

impl FlashStore {
    /// Opens the store in the `nvs` partition (or the default NVS range when no table is found).
    pub fn new(mut flash: FlashStorage<'static>) -> Self {
        let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
        let range = partitions::read_partition_table(&mut flash, &mut table)
            .ok()
            .and_then(|t| {
                t.find_partition(PartitionType::Data(DataPartitionSubType::Nvs))
                    .ok()
                    .flatten()
            })
            .map(|p| p.offset()..p.offset() + p.len())
            .unwrap_or(DEFAULT_NVS);
        log::info!("store: nvs at {:#x}..{:#x}", range.start, range.end);
        let config =
            MapConfig::try_new(range.clone()).unwrap_or_else(|_| MapConfig::new(DEFAULT_NVS));
        Self {
            map: MapStorage::new(BlockingAsync::new(flash), config, Cache::new_uncached()),
            scratch: [0; CHUNK + 16],
        }
    }

    /// Reads slot `slot` into `buf`; returns the stored length (0 = nothing stored).
    pub fn load(&mut self, slot: u8, buf: &mut [u8]) -> Result<usize, StoreError> {
        embassy_futures::block_on(self.load_async(slot, buf))
    }

    /// Replaces slot `slot` by `bytes`.
    pub fn save(&mut self, slot: u8, bytes: &[u8]) -> Result<(), StoreError> {
        embassy_futures::block_on(self.save_async(slot, bytes))
    }

    async fn load_async(&mut self, slot: u8, buf: &mut [u8]) -> Result<usize, StoreError> {
        let len: Option<u32> = self
            .map
            .fetch_item(&mut self.scratch, &[slot, LEN_KEY])
            .await
            .map_err(|_| StoreError::Flash)?;
        let Some(len) = len else { return Ok(0) };
        let len = len as usize;
        let dst = buf.get_mut(..len).ok_or(StoreError::BufferTooSmall)?;
        for (k, part) in dst.chunks_mut(CHUNK).enumerate() {
            let key = [slot, k as u8];
            let item: Option<&[u8]> = self
                .map
                .fetch_item(&mut self.scratch, &key)
                .await
                .map_err(|_| StoreError::Flash)?;
            match item {
                Some(bytes) if bytes.len() == part.len() => part.copy_from_slice(bytes),
                _ => return Err(StoreError::Corrupt),
            }
        }
        Ok(len)
    }

    async fn save_async(&mut self, slot: u8, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.len() > CHUNK * usize::from(LEN_KEY) {
            return Err(StoreError::BufferTooSmall);
        }
        for (k, part) in bytes.chunks(CHUNK).enumerate() {
            self.map
                .store_item(&mut self.scratch, &[slot, k as u8], &part)
                .await
                .map_err(|_| StoreError::Flash)?;
        }
        self.map
            .store_item(&mut self.scratch, &[slot, LEN_KEY], &(bytes.len() as u32))
            .await
            .map_err(|_| StoreError::Flash)
    }
}
