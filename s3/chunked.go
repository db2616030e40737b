package s3

import (
	"context"
	"fmt"
	"io"
	"strconv"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// aws-sdk-go-v2 sends a trailing checksum only over https; over plain http it reads each
// body twice (once for its checksum and SigV4 payload hash, once to send it). This
// middleware sends every partBody itself with an unsigned payload, over http and https
// alike, so each body is read exactly once: as aws-chunked with the CRC-32C in the
// trailer, or as is when the request already carries its CRC-32C header (single PUTs).
//
// It sits in the Finalize step right after Retry: every attempt wraps the body afresh
// (Retry rewinds the partBody before each attempt), and it runs before the SDK's payload
// hashing, which it turns off by declaring the payload unsigned.
type trailingCRC struct{}

const (
	unsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	unsigned        = "UNSIGNED-PAYLOAD"
	crcTrailerName  = "x-amz-checksum-crc32c"
)

func (trailingCRC) ID() string { return "tierdTrailingCRC32C" }

func (trailingCRC) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return next.HandleFinalize(ctx, in)
	}
	body, ok := req.GetStream().(*partBody)
	if !ok {
		return next.HandleFinalize(ctx, in)
	}
	if req.Header.Get(crcTrailerName) != "" || body.size == 0 {
		return next.HandleFinalize(v4.SetPayloadHash(ctx, unsigned), in)
	}
	enc := newAWSChunked(body, awsChunkSize)
	req, err := req.SetStream(enc)
	if err != nil {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("wrap body in aws-chunked: %w", err)
	}
	req.ContentLength = enc.length
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(body.size, 10))
	req.Header.Set("X-Amz-Trailer", crcTrailerName)
	in.Request = req
	return next.HandleFinalize(v4.SetPayloadHash(ctx, unsignedTrailer), in)
}

func addTrailingCRC(stack *middleware.Stack) error {
	return stack.Finalize.Insert(trailingCRC{}, "Retry", middleware.After)
}

// awsChunked encodes a partBody as aws-chunked chunks of at most chunkSize bytes (MinIO
// refuses chunks over 16 MiB) followed by the CRC trailer:
//
//	<n hex>\r\n<n bytes>\r\n ... 0\r\nx-amz-checksum-crc32c:<base64>\r\n\r\n
//
// Chunk data is read straight from the body into the caller's slice: the encoder adds
// only the few framing bytes.
type awsChunked struct {
	body   *partBody
	chunk  int64  // chunk size
	head   []byte // framing not yet sent
	left   int64  // bytes of the current chunk not yet sent
	done   bool   // the body is through; head holds the trailer
	length int64  // the whole encoding's length
}

// awsChunkSize is far below MinIO's 16 MiB limit and large enough that framing costs
// nothing.
const awsChunkSize = 1 << 20

func newAWSChunked(body *partBody, chunk int64) *awsChunked {
	c := &awsChunked{body: body, chunk: chunk}
	c.length = int64(len(c.trailer(0)))
	for rest := body.size; rest > 0; rest -= min(rest, chunk) {
		n := min(rest, chunk)
		c.length += int64(len(strconv.FormatInt(n, 16))) + 2 + n + 2
	}
	c.startChunk(body.size, "")
	return c
}

// trailer is the framing after the last data chunk's own \r\n.
func (c *awsChunked) trailer(crc uint32) string {
	return "0\r\n" + crcTrailerName + ":" + encodeCRC(crc) + "\r\n\r\n"
}

// startChunk queues the header of the next chunk of at most rest bytes, after prefix.
func (c *awsChunked) startChunk(rest int64, prefix string) {
	c.left = min(rest, c.chunk)
	c.head = []byte(prefix + strconv.FormatInt(c.left, 16) + "\r\n")
}

func (c *awsChunked) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	if c.done {
		return 0, io.EOF
	}
	n, err := c.body.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	if err != nil && err != io.EOF {
		return n, err
	}
	if c.left > 0 {
		if err == io.EOF {
			return n, fmt.Errorf("BUG: s3: part body ended %d bytes early", c.left)
		}
		return n, nil
	}
	if rest := c.body.size - c.body.pos; rest > 0 {
		c.startChunk(rest, "\r\n")
		return n, nil
	}
	crc, ok := c.body.CRC()
	if !ok {
		return n, fmt.Errorf("BUG: s3: part body was not read in order")
	}
	c.head = []byte("\r\n" + c.trailer(crc))
	c.done = true
	return n, nil
}
