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
// middleware sends every partBody itself as aws-chunked with an unsigned payload and the
// CRC-32C in the trailer, over http and https alike, so each body is read exactly once.
//
// It sits in the Finalize step right after Retry: every attempt wraps the body afresh
// (Retry rewinds the partBody before each attempt), and it runs before the SDK's payload
// hashing, which it turns off by declaring the payload STREAMING-UNSIGNED-PAYLOAD-TRAILER.
type trailingCRC struct{}

const (
	unsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
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
	if !ok || body.size == 0 {
		return next.HandleFinalize(ctx, in)
	}
	enc := newAWSChunked(body)
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

// awsChunked encodes a partBody as one aws-chunked chunk followed by the CRC trailer:
//
//	<size hex>\r\n<size bytes>\r\n0\r\nx-amz-checksum-crc32c:<base64>\r\n\r\n
type awsChunked struct {
	body   *partBody
	head   []byte // not yet sent: the chunk header, later the trailer
	done   bool   // the body is through; head holds the trailer
	length int64
}

func newAWSChunked(body *partBody) *awsChunked {
	head := []byte(strconv.FormatInt(body.size, 16) + "\r\n")
	trailer := len("\r\n0\r\n" + crcTrailerName + ":" + encodeCRC(0) + "\r\n\r\n")
	return &awsChunked{body: body, head: head, length: int64(len(head)) + body.size + int64(trailer)}
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
	n, err := c.body.Read(p)
	if err == io.EOF {
		crc, ok := c.body.CRC()
		if !ok {
			return n, fmt.Errorf("BUG: s3: part body was not read in order")
		}
		c.head = []byte("\r\n0\r\n" + crcTrailerName + ":" + encodeCRC(crc) + "\r\n\r\n")
		c.done = true
		return n, nil
	}
	return n, err
}
