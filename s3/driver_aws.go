package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// awsDriver speaks S3 through aws-sdk-go-v2's service client only: no transfer manager
// (it pre-allocates (Concurrency+1)×PartSize per upload), no SDK-computed checksums
// (bodies carry their CRC-32C in a trailer, see trailingCRC).
type awsDriver struct {
	c      *awss3.Client
	bucket string
	sse    types.ServerSideEncryption
	kmsKey *string
}

func newAWSDriver(ctx context.Context, cfg Config, tc transportConfig) (*awsDriver, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(tc.apply)),
		// The daemon retries whole jobs: no client-side retry quota that would turn an
		// outage into "retry quota exceeded" long after the server is back.
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
		}),
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	c := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
		o.ContinueHeaderThresholdBytes = -1 // no Expect: 100-continue round trip per part
		o.APIOptions = append(o.APIOptions, addTrailingCRC)
	})
	d := &awsDriver{c: c, bucket: cfg.Bucket}
	switch cfg.SSE {
	case "s3":
		d.sse = types.ServerSideEncryptionAes256
	case "kms":
		d.sse = types.ServerSideEncryptionAwsKms
		if cfg.SSEKMSKeyID != "" {
			d.kmsKey = aws.String(cfg.SSEKMSKeyID)
		}
	}
	return d, nil
}

func (d *awsDriver) put(ctx context.Context, key string, body *partBody, crc uint32, cond putCond) (string, error) {
	in := &awss3.PutObjectInput{
		Bucket: &d.bucket, Key: &key, Body: body, ContentLength: aws.Int64(body.size),
		ChecksumCRC32C:       aws.String(encodeCRC(crc)),
		ServerSideEncryption: d.sse, SSEKMSKeyId: d.kmsKey,
	}
	if cond.ifNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if cond.ifMatch != "" {
		in.IfMatch = aws.String(cond.ifMatch)
	}
	out, err := d.c.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (d *awsDriver) createMultipart(ctx context.Context, key string) (string, error) {
	out, err := d.c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: &d.bucket, Key: &key,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumType: types.ChecksumTypeFullObject,
		ServerSideEncryption: d.sse, SSEKMSKeyId: d.kmsKey,
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

func (d *awsDriver) uploadPart(ctx context.Context, key, uploadID string, num int, body *partBody) (string, error) {
	out, err := d.c.UploadPart(ctx, &awss3.UploadPartInput{
		Bucket: &d.bucket, Key: &key, UploadId: &uploadID, PartNumber: aws.Int32(int32(num)),
		Body: body, ContentLength: aws.Int64(body.size),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (d *awsDriver) complete(ctx context.Context, key, uploadID string, parts []part, crc uint32, size int64) error {
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cp[i] = types.CompletedPart{ETag: aws.String(p.etag), PartNumber: aws.Int32(int32(p.num)), ChecksumCRC32C: aws.String(encodeCRC(p.crc))}
	}
	_, err := d.c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: &d.bucket, Key: &key, UploadId: &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
		ChecksumCRC32C:  aws.String(encodeCRC(crc)), ChecksumType: types.ChecksumTypeFullObject,
		MpuObjectSize: aws.Int64(size),
	})
	return err
}

func (d *awsDriver) abort(ctx context.Context, key, uploadID string) error {
	_, err := d.c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: &uploadID})
	return err
}

func (d *awsDriver) head(ctx context.Context, key string) (objectInfo, error) {
	out, err := d.c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &d.bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return objectInfo{}, err
	}
	return objectInfo{
		key: key, size: aws.ToInt64(out.ContentLength), modTime: aws.ToTime(out.LastModified), etag: aws.ToString(out.ETag),
		checksum: aws.ToString(out.ChecksumCRC32C), checksumType: string(out.ChecksumType),
	}, nil
}

func (d *awsDriver) getRange(ctx context.Context, key, etag string, off, n int64) (io.ReadCloser, error) {
	out, err := d.c.GetObject(ctx, &awss3.GetObjectInput{
		Bucket: &d.bucket, Key: &key, IfMatch: &etag,
		Range: aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)),
	})
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

func (d *awsDriver) list(ctx context.Context, prefix string, fn func(objectInfo) error) error {
	p := awss3.NewListObjectsV2Paginator(d.c, &awss3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if err := fn(objectInfo{key: aws.ToString(o.Key), size: aws.ToInt64(o.Size), modTime: aws.ToTime(o.LastModified), etag: aws.ToString(o.ETag)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *awsDriver) delete(ctx context.Context, key string) error {
	_, err := d.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &d.bucket, Key: &key})
	return err
}

func (d *awsDriver) listUploads(ctx context.Context, prefix string, fn func(upload) error) error {
	in := &awss3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &prefix}
	for range maxListPages {
		out, err := d.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return err
		}
		for _, u := range out.Uploads {
			if err := fn(upload{key: aws.ToString(u.Key), id: aws.ToString(u.UploadId), initiated: aws.ToTime(u.Initiated)}); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	return fmt.Errorf("list multipart uploads: more than %d pages", maxListPages)
}

// maxListPages bounds a paginated listing whose server never says it is done.
const maxListPages = 100000

func (d *awsDriver) classify(err error) errKind {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return errNotFound
		case "NoSuchUpload":
			return errNoUpload
		case "PreconditionFailed":
			return errChanged
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return errNotFound
		case http.StatusPreconditionFailed:
			return errChanged
		}
	}
	return errOther
}
