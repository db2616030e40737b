package record

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

var errUnexpectedEOF = io.ErrUnexpectedEOF

// cursor reads big-endian fields from b. The first failure is kept in err (wrapping
// ErrCorrupt); later reads return zero values, so decoders check err once at the end.
type cursor struct {
	b   []byte
	off int
	err error
}

func (c *cursor) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

// take returns the next n bytes, or nil after recording an error.
func (c *cursor) take(n int) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > len(c.b)-c.off {
		c.fail("field of %d bytes at offset %d runs past the end (%d)", n, c.off, len(c.b))
		return nil
	}
	p := c.b[c.off : c.off+n : c.off+n]
	c.off += n
	return p
}

func (c *cursor) u8() uint8 {
	if p := c.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (c *cursor) u16() uint16 {
	if p := c.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (c *cursor) i32() int32 {
	if p := c.take(4); p != nil {
		return int32(binary.BigEndian.Uint32(p))
	}
	return 0
}

func (c *cursor) i64() int64 {
	if p := c.take(8); p != nil {
		return int64(binary.BigEndian.Uint64(p))
	}
	return 0
}

// bytes returns the next n bytes (aliasing b), or nil for n == 0.
func (c *cursor) bytes(n int) []byte {
	p := c.take(n)
	if len(p) == 0 {
		return nil
	}
	return p
}

// host reads a RocketMQ socket address: 4 or 16 address bytes and an int32 port.
func (c *cursor) host(v6 bool) netip.AddrPort {
	var addr netip.Addr
	if v6 {
		if p := c.take(16); p != nil {
			addr = netip.AddrFrom16([16]byte(p))
		}
	} else if p := c.take(4); p != nil {
		addr = netip.AddrFrom4([4]byte(p))
	}
	port := c.i32()
	if c.err != nil {
		return netip.AddrPort{}
	}
	if port < 0 || port > 65535 {
		c.fail("host port %d out of range", port)
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addr, uint16(port))
}
