package s3

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// minioDriver speaks S3 through minio-go's Core (one request per call). The Client's
// PutObject is never used: given a reader it would plan "optimal" parts of up to 5 GiB
// and buffer them (hundreds of MiB per upload). Every call here passes an exact size,
// an unsigned payload (no SHA-256 pass over the body) and no MD5.
type minioDriver struct {
	core   *minio.Core
	bucket string
	sse    encrypt.ServerSide
}

func newMinioDriver(cfg Config, tc transportConfig) (*minioDriver, error) {
	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("endpoint %q is not an http(s)://host[:port] URL", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr := &http.Transport{}
	tc.apply(tr)
	c, err := minio.New(host, &minio.Options{
		Creds: creds, Secure: secure, Transport: tr, Region: cfg.Region, BucketLookup: lookup,
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("minio client: %w", err)
	}
	d := &minioDriver{core: &minio.Core{Client: c}, bucket: cfg.Bucket}
	switch cfg.SSE {
	case "s3":
		d.sse = encrypt.NewSSE()
	case "kms":
		if d.sse, err = encrypt.NewSSEKMS(cfg.SSEKMSKeyID, nil); err != nil {
			return nil, fmt.Errorf("SSE-KMS: %w", err)
		}
	}
	return d, nil
}

func (d *minioDriver) put(ctx context.Context, key string, body *partBody, crc uint32, cond putCond) (string, error) {
	// The checksum as a header: minio-go then adds no trailer of its own (which it would
	// not reset when it retries).
	opts := minio.PutObjectOptions{
		DisableContentSha256: true, ServerSideEncryption: d.sse,
		UserMetadata: map[string]string{"X-Amz-Checksum-Crc32c": encodeCRC(crc)},
	}
	if cond.ifNoneMatch {
		opts.SetMatchETagExcept("*")
	}
	if cond.ifMatch != "" {
		opts.SetMatchETag(strings.Trim(cond.ifMatch, `"`))
	}
	info, err := d.core.PutObject(ctx, d.bucket, key, body, body.size, "", "", opts)
	if err != nil {
		return "", err
	}
	return info.ETag, nil
}

func (d *minioDriver) createMultipart(ctx context.Context, key string) (string, error) {
	return d.core.NewMultipartUpload(ctx, d.bucket, key, minio.PutObjectOptions{
		ServerSideEncryption: d.sse,
		UserMetadata: map[string]string{
			"X-Amz-Checksum-Algorithm": "CRC32C",
			"X-Amz-Checksum-Type":      "FULL_OBJECT",
		},
	})
}

// trailedBody fills the CRC trailer of a part when its body has been read through.
type trailedBody struct {
	*partBody
	trailer http.Header
}

func (t *trailedBody) Read(p []byte) (int, error) {
	n, err := t.partBody.Read(p)
	if err == io.EOF {
		crc, ok := t.partBody.CRC()
		if !ok {
			return n, fmt.Errorf("BUG: s3: part body was not read in order")
		}
		t.trailer.Set(crcTrailerName, encodeCRC(crc))
	}
	return n, err
}

func (d *minioDriver) uploadPart(ctx context.Context, key, uploadID string, num int, body *partBody) (string, error) {
	trailer := http.Header{}
	trailer.Set(crcTrailerName, encodeCRC(0)) // replaced at the end of the body
	p, err := d.core.PutObjectPart(ctx, d.bucket, key, uploadID, num, &trailedBody{body, trailer}, body.size,
		minio.PutObjectPartOptions{DisableContentSha256: true, Trailer: trailer})
	if err != nil {
		return "", err
	}
	return p.ETag, nil
}

func (d *minioDriver) complete(ctx context.Context, key, uploadID string, parts []part, crc uint32, size int64) error {
	cp := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.num, ETag: p.etag, ChecksumCRC32C: encodeCRC(p.crc)}
	}
	_, err := d.core.CompleteMultipartUpload(ctx, d.bucket, key, uploadID, cp, minio.PutObjectOptions{
		UserMetadata: map[string]string{
			"X-Amz-Checksum-Crc32c": encodeCRC(crc),
			"X-Amz-Checksum-Type":   "FULL_OBJECT",
		},
	})
	return err
}

func (d *minioDriver) abort(ctx context.Context, key, uploadID string) error {
	return d.core.AbortMultipartUpload(ctx, d.bucket, key, uploadID)
}

func (d *minioDriver) head(ctx context.Context, key string) (objectInfo, error) {
	o, err := d.core.StatObject(ctx, d.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return objectInfo{}, err
	}
	return objectInfo{
		key: key, size: o.Size, modTime: o.LastModified, etag: o.ETag,
		checksum: o.ChecksumCRC32C, checksumType: o.ChecksumMode,
	}, nil
}

func (d *minioDriver) getRange(ctx context.Context, key, etag string, off, n int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, err
	}
	if err := opts.SetMatchETag(strings.Trim(etag, `"`)); err != nil {
		return nil, err
	}
	body, _, _, err := d.core.GetObject(ctx, d.bucket, key, opts)
	return body, err
}

func (d *minioDriver) list(ctx context.Context, prefix string, fn func(objectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn fails
	for o := range d.core.Client.ListObjects(ctx, d.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return o.Err
		}
		if err := fn(objectInfo{key: o.Key, size: o.Size, modTime: o.LastModified, etag: o.ETag}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (d *minioDriver) delete(ctx context.Context, key string) error {
	return d.core.RemoveObject(ctx, d.bucket, key, minio.RemoveObjectOptions{})
}

func (d *minioDriver) listUploads(ctx context.Context, prefix string, fn func(upload) error) error {
	var keyMarker, idMarker string
	for range maxListPages {
		res, err := d.core.ListMultipartUploads(ctx, d.bucket, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return err
		}
		for _, u := range res.Uploads {
			if err := fn(upload{key: u.Key, id: u.UploadID, initiated: u.Initiated}); err != nil {
				return err
			}
		}
		if !res.IsTruncated {
			return nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	return fmt.Errorf("list multipart uploads: more than %d pages", maxListPages)
}

func (d *minioDriver) classify(err error) errKind {
	r := minio.ToErrorResponse(err)
	switch r.Code {
	case minio.NoSuchKey, "NotFound":
		return errNotFound
	case minio.NoSuchUpload:
		return errNoUpload
	case "PreconditionFailed":
		return errChanged
	}
	switch r.StatusCode {
	case http.StatusNotFound:
		return errNotFound
	case http.StatusPreconditionFailed:
		return errChanged
	}
	return errOther
}
