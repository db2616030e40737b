package s3

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// castagnoliReversed is the CRC-32C polynomial in the bit order hash/crc32 uses.
const castagnoliReversed = crc32.Castagnoli

// crc32cCombine returns the CRC-32C of A||B from crcA = CRC(A), crcB = CRC(B) and len(B),
// as zlib's crc32_combine does: crcA is advanced over lenB zero bytes by repeated squaring
// of the GF(2) "shift by one zero bit" matrix. Parts uploaded in parallel each know their
// own CRC; this yields the object's.
func crc32cCombine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [32]uint32
	odd[0] = castagnoliReversed // the operator for one zero bit
	row := uint32(1)
	for n := 1; n < 32; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	for {
		gf2Square(&even, &odd) // first pass: one zero byte
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

// encodeCRC is the form S3 checksum headers use: base64 of the big-endian bytes.
func encodeCRC(crc uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

// decodeCRC parses an S3 CRC-32C checksum header value.
func decodeCRC(s string) (uint32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, fmt.Errorf("malformed CRC-32C checksum %q", s)
	}
	return binary.BigEndian.Uint32(b), nil
}
