// Package codec is a segment.Backend that wraps another (posix, s3) and stores its objects
// compressed (zstd) and encrypted (AES-256-GCM, a random data key per object wrapped by a
// key-encryption key of a key file) in independently decodable frames with a frame index,
// so a ranged read fetches and decodes only the frames it covers. Readers, Stat and List
// see the plaintext, its size and its CRC-32C. The byte layout is FORMAT.md.
//
// Memory is fixed: Codecs holds every encoder, decoder and frame buffer the process uses,
// and work waits for a free one.
package codec
