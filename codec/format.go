package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/tierd/tierd/segment"
)

// The byte layout of an object (FORMAT.md describes it field by field):
//
//	header (HeaderSize) | frame 0 | frame 1 | ... | index (4 bytes a frame) | footer (FooterSize)
//
// All integers are big-endian.

// Version is the format version this package writes and reads.
const Version = 1

// Sizes of the fixed parts.
const (
	HeaderSize     = 144
	FooterSize     = 32
	IndexEntrySize = 4
	SidecarSize    = 123
)

// Magics: the header's, the footer's and the key sidecar's first or last 8 bytes.
var (
	headerMagic  = [8]byte{'t', 'i', 'e', 'r', 'd', 'c', 'd', 'c'}
	footerMagic  = [8]byte{'t', 'i', 'e', 'r', 'd', 'e', 'n', 'd'}
	sidecarMagic = [8]byte{'t', 'i', 'e', 'r', 'd', 'k', 'e', 'y'}
)

// Compression of a tier's frames.
type Compression uint8

// Compressions.
const (
	CompressNone Compression = 0
	CompressZstd Compression = 1
)

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Encryption of an object's frames.
const (
	encNone   = 0
	encAESGCM = 1 // AES-256-GCM, a random data key per object
)

// Nonce schemes.
const (
	nonceNone         = 0
	nonceFrameCounter = 1 // 4 zero bytes | frame number (uint64)
)

// Frame size limits: frames are whole pages, at most 16 MiB.
const (
	MinFrameSize = 4 << 10
	MaxFrameSize = 16 << 20
)

// Sizes of the key material.
const (
	dataKeySize    = 32
	maxKeyIDLen    = 32
	wrapNonceSize  = 12
	gcmTagSize     = 16
	wrappedKeySize = dataKeySize + gcmTagSize
)

// entryZstd marks an index entry whose frame is zstd-compressed; the rest is its length.
const entryZstd = 1 << 31

// ErrFormat is wrapped by every error about bytes that are not a valid object of this
// format (corrupt, truncated, or from a newer version).
var ErrFormat = errors.New("codec: invalid object")

func formatErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, a...))
}

// header is the fixed header at offset 0.
type header struct {
	Compression Compression
	Encryption  uint8
	FrameSize   uint32
	Size        int64 // plaintext bytes; -1 (all ones stored) when the footer has it
	ObjectID    [16]byte
	NonceScheme uint8
	KeyID       string
	WrapNonce   [wrapNonceSize]byte
	WrappedKey  [wrappedKeySize]byte
}

// frames is the number of frames of a plaintext of h.Size bytes.
func (h *header) frames() int64 {
	return (h.Size + int64(h.FrameSize) - 1) / int64(h.FrameSize)
}

// frameLen is the plaintext length of frame i (FrameSize while the size is unknown).
func (h *header) frameLen(i int64) int {
	if h.Size < 0 {
		return int(h.FrameSize)
	}
	return int(min(int64(h.FrameSize), h.Size-i*int64(h.FrameSize)))
}

// sizeUnknown is the header's size field of an object created with segment.UnknownSize.
const sizeUnknown = ^uint64(0)

// maxStored is the most bytes a frame of n plaintext bytes may take stored: raw (a
// compressed frame that is not smaller is stored raw), plus the GCM tag.
func (h *header) maxStored(n int) int {
	if h.Encryption == encAESGCM {
		return n + gcmTagSize
	}
	return n
}

// aadPrefixLen is how much of the header the key wrapping authenticates, before the key id.
const aadPrefixLen = 41

func (h *header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b[0:8], headerMagic[:])
	binary.BigEndian.PutUint16(b[8:10], Version)
	b[10] = byte(h.Compression)
	b[11] = h.Encryption
	binary.BigEndian.PutUint32(b[12:16], h.FrameSize)
	if h.Size < 0 {
		binary.BigEndian.PutUint64(b[16:24], sizeUnknown)
	} else {
		binary.BigEndian.PutUint64(b[16:24], uint64(h.Size))
	}
	copy(b[24:40], h.ObjectID[:])
	b[40] = h.NonceScheme
	b[41] = byte(len(h.KeyID))
	copy(b[42:74], h.KeyID)
	copy(b[74:86], h.WrapNonce[:])
	copy(b[86:134], h.WrappedKey[:])
	binary.BigEndian.PutUint32(b[140:144], crc32.Checksum(b[:140], segment.Castagnoli))
	return b
}

// parseHeader decodes and checks a header.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < HeaderSize {
		return h, formatErr("header is %d bytes, want %d", len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if !bytes.Equal(b[0:8], headerMagic[:]) {
		return h, formatErr("no header magic %q", headerMagic[:])
	}
	if got, want := binary.BigEndian.Uint32(b[140:144]), crc32.Checksum(b[:140], segment.Castagnoli); got != want {
		return h, formatErr("header CRC-32C is %08x, its bytes have %08x", got, want)
	}
	if v := binary.BigEndian.Uint16(b[8:10]); v != Version {
		return h, formatErr("format version %d; this tierd reads version %d (upgrade tierd)", v, Version)
	}
	h.Compression = Compression(b[10])
	h.Encryption = b[11]
	h.FrameSize = binary.BigEndian.Uint32(b[12:16])
	size := binary.BigEndian.Uint64(b[16:24])
	copy(h.ObjectID[:], b[24:40])
	h.NonceScheme = b[40]
	kl := int(b[41])
	copy(h.WrapNonce[:], b[74:86])
	copy(h.WrappedKey[:], b[86:134])
	switch {
	case h.Compression > CompressZstd:
		return h, formatErr("unknown compression %d", h.Compression)
	case h.Encryption > encAESGCM:
		return h, formatErr("unknown encryption %d", h.Encryption)
	case h.FrameSize < MinFrameSize || h.FrameSize > MaxFrameSize || h.FrameSize%MinFrameSize != 0:
		return h, formatErr("frame size %d is not a multiple of %d in [%d, %d]", h.FrameSize, MinFrameSize, MinFrameSize, MaxFrameSize)
	case size > 1<<50 && size != sizeUnknown:
		return h, formatErr("size %d is too large", size)
	case kl > maxKeyIDLen:
		return h, formatErr("key id length %d is over %d", kl, maxKeyIDLen)
	case !allZero(b[42+kl : 74]), !allZero(b[134:140]):
		return h, formatErr("reserved bytes are not zero")
	}
	h.Size = int64(size)
	if size == sizeUnknown {
		h.Size = -1
	}
	h.KeyID = string(b[42 : 42+kl])
	if h.Encryption == encAESGCM {
		if h.NonceScheme != nonceFrameCounter {
			return h, formatErr("unknown nonce scheme %d", h.NonceScheme)
		}
		if err := checkKeyID(h.KeyID); err != nil {
			return h, formatErr("%v", err)
		}
	} else if h.NonceScheme != nonceNone || kl != 0 || !allZero(b[74:134]) {
		return h, formatErr("key fields set in an unencrypted object")
	}
	return h, nil
}

// footer is the fixed footer at the object's end.
type footer struct {
	Size   int64  // plaintext bytes
	CRC32C uint32 // of the plaintext
	Frames uint32
	// IndexCRC is the CRC-32C of the index bytes.
	IndexCRC uint32
}

func (f *footer) marshal() []byte {
	b := make([]byte, FooterSize)
	binary.BigEndian.PutUint64(b[0:8], uint64(f.Size))
	binary.BigEndian.PutUint32(b[8:12], f.CRC32C)
	binary.BigEndian.PutUint32(b[12:16], f.Frames)
	binary.BigEndian.PutUint32(b[16:20], f.IndexCRC)
	binary.BigEndian.PutUint32(b[20:24], crc32.Checksum(b[:20], segment.Castagnoli))
	copy(b[24:32], footerMagic[:])
	return b
}

// hasFooterMagic reports whether b ends like an object of this format.
func hasFooterMagic(b []byte) bool {
	return len(b) >= 8 && bytes.Equal(b[len(b)-8:], footerMagic[:])
}

// parseFooter decodes and checks a footer (the last FooterSize bytes of b).
func parseFooter(b []byte) (footer, error) {
	var f footer
	if len(b) < FooterSize {
		return f, formatErr("footer is %d bytes, want %d", len(b), FooterSize)
	}
	b = b[len(b)-FooterSize:]
	if !hasFooterMagic(b) {
		return f, formatErr("no footer magic %q", footerMagic[:])
	}
	if got, want := binary.BigEndian.Uint32(b[20:24]), crc32.Checksum(b[:20], segment.Castagnoli); got != want {
		return f, formatErr("footer CRC-32C is %08x, its bytes have %08x", got, want)
	}
	size := binary.BigEndian.Uint64(b[0:8])
	if size > 1<<50 {
		return f, formatErr("size %d is too large", size)
	}
	f.Size = int64(size)
	f.CRC32C = binary.BigEndian.Uint32(b[8:12])
	f.Frames = binary.BigEndian.Uint32(b[12:16])
	f.IndexCRC = binary.BigEndian.Uint32(b[16:20])
	return f, nil
}

// frameIndex is the decoded index: where each frame is stored and how.
type frameIndex struct {
	off  []int64 // off[i] = offset of frame i in the object; off[n] = offset of the index
	zstd []bool
}

// parseIndex decodes the index of h's object, given its footer f and the object's stored
// size, and checks that it describes exactly the object's bytes.
func parseIndex(b []byte, h *header, f *footer, objectSize int64) (frameIndex, error) {
	var ix frameIndex
	n := h.frames()
	switch {
	case f.Size != h.Size:
		return ix, formatErr("footer says %d bytes, header %d", f.Size, h.Size)
	case int64(f.Frames) != n:
		return ix, formatErr("footer says %d frames, %d bytes in frames of %d make %d", f.Frames, h.Size, h.FrameSize, n)
	case int64(len(b)) != n*IndexEntrySize:
		return ix, formatErr("index is %d bytes, want %d", len(b), n*IndexEntrySize)
	}
	if got := crc32.Checksum(b, segment.Castagnoli); got != f.IndexCRC {
		return ix, formatErr("index CRC-32C is %08x, footer says %08x", got, f.IndexCRC)
	}
	ix.off = make([]int64, n+1)
	ix.zstd = make([]bool, n)
	off := int64(HeaderSize)
	for i := range n {
		e := binary.BigEndian.Uint32(b[i*IndexEntrySize:])
		l := int64(e &^ entryZstd)
		ix.zstd[i] = e&entryZstd != 0
		plain := h.frameLen(i)
		switch {
		case ix.zstd[i] && h.Compression != CompressZstd:
			return ix, formatErr("frame %d is compressed in an object without compression", i)
		case l > int64(h.maxStored(plain)) || (!ix.zstd[i] && l != int64(h.maxStored(plain))):
			return ix, formatErr("frame %d is %d bytes stored for %d plaintext bytes", i, l, plain)
		case l == 0:
			return ix, formatErr("frame %d is empty", i)
		}
		ix.off[i] = off
		off += l
	}
	ix.off[n] = off
	if want := off + n*IndexEntrySize + FooterSize; want != objectSize {
		return ix, formatErr("header, frames, index and footer make %d bytes, the object has %d", want, objectSize)
	}
	return ix, nil
}

func appendEntry(b []byte, stored int, compressed bool) []byte {
	e := uint32(stored)
	if compressed {
		e |= entryZstd
	}
	return binary.BigEndian.AppendUint32(b, e)
}

// sidecar is a key object written by Rekey: the object's data key wrapped by a newer key.
type sidecar struct {
	ObjectID   [16]byte
	KeyID      string
	WrapNonce  [wrapNonceSize]byte
	WrappedKey [wrappedKeySize]byte
}

func (s *sidecar) marshal() []byte {
	b := make([]byte, SidecarSize)
	copy(b[0:8], sidecarMagic[:])
	binary.BigEndian.PutUint16(b[8:10], Version)
	copy(b[10:26], s.ObjectID[:])
	b[26] = byte(len(s.KeyID))
	copy(b[27:59], s.KeyID)
	copy(b[59:71], s.WrapNonce[:])
	copy(b[71:119], s.WrappedKey[:])
	binary.BigEndian.PutUint32(b[119:123], crc32.Checksum(b[:119], segment.Castagnoli))
	return b
}

func parseSidecar(b []byte) (sidecar, error) {
	var s sidecar
	if len(b) != SidecarSize {
		return s, formatErr("key sidecar is %d bytes, want %d", len(b), SidecarSize)
	}
	if !bytes.Equal(b[0:8], sidecarMagic[:]) {
		return s, formatErr("no key sidecar magic %q", sidecarMagic[:])
	}
	if got, want := binary.BigEndian.Uint32(b[119:123]), crc32.Checksum(b[:119], segment.Castagnoli); got != want {
		return s, formatErr("key sidecar CRC-32C is %08x, its bytes have %08x", got, want)
	}
	if v := binary.BigEndian.Uint16(b[8:10]); v != Version {
		return s, formatErr("key sidecar version %d; this tierd reads version %d", v, Version)
	}
	kl := int(b[26])
	if kl > maxKeyIDLen || !allZero(b[27+kl:59]) {
		return s, formatErr("key sidecar key id length %d", kl)
	}
	copy(s.ObjectID[:], b[10:26])
	s.KeyID = string(b[27 : 27+kl])
	if err := checkKeyID(s.KeyID); err != nil {
		return s, formatErr("key sidecar: %v", err)
	}
	copy(s.WrapNonce[:], b[59:71])
	copy(s.WrappedKey[:], b[71:119])
	return s, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
