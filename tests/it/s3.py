"""The tests' hands on the local S3 server (boto3, AWS's own client), apart from the binary.

Usage: s3.py COMMAND BUCKET [ARGS]. The endpoint and credentials come from PHONE_ENRICH_S3_*.
  mkbucket BUCKET            make a bucket
  put BUCKET KEY FILE        upload a file
  get BUCKET KEY FILE        download an object (exit 3 when there is none)
  keys BUCKET                the bucket's keys, one a line
  uploads BUCKET             the multipart uploads begun and neither completed nor aborted
  deny-writes BUCKET         a bucket policy refusing every write of an object
"""
import json
import os
import sys

import boto3
import botocore

env = os.environ
s3 = boto3.client(
    "s3",
    endpoint_url=env["PHONE_ENRICH_S3_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id=env["PHONE_ENRICH_S3_KEY_ID"],
    aws_secret_access_key=env["PHONE_ENRICH_S3_SECRET"],
)
command, bucket, *args = sys.argv[1:]
if command == "mkbucket":
    s3.create_bucket(Bucket=bucket)
elif command == "put":
    s3.upload_file(args[1], bucket, args[0])
elif command == "get":
    try:
        s3.download_file(bucket, args[0], args[1])
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey"):
            sys.exit(3)
        raise
elif command == "keys":
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            print(item["Key"])
elif command == "uploads":
    print(len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])))
elif command == "deny-writes":
    # Real S3 names a multipart upload's permission s3:PutObject; moto checks POST as
    # s3:PostObject.
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["s3:PutObject", "s3:PostObject"],
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
else:
    sys.exit(f"unknown command {command}")
