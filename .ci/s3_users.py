"""Credentials for the tests on the local S3 server (moto), then its IAM checks switched on.

Run by .ci/test once `moto_server` answers at the endpoint given as the only argument. Makes an
IAM user that may do anything in S3, then has every later request checked against a known key
and its signature (moto's `reset-auth`), so wrong credentials are refused as S3 refuses them
(403 InvalidAccessKeyId, SignatureDoesNotMatch). Bucket policies are enforced by moto without
this (a bucket denying s3:PutObject refuses writes). Prints `export NAME=VALUE` lines for the
tests' environment.
"""
import json
import sys
import urllib.request

import boto3

endpoint = sys.argv[1]
iam = boto3.client(
    "iam",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="setup",
    aws_secret_access_key="setup",
)


def user(name, statements):
    iam.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


writer = user("writer", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
request = urllib.request.Request(
    f"{endpoint}/moto-api/reset-auth",
    data=b"0",
    method="POST",
    headers={"Content-Type": "text/plain"},
)
urllib.request.urlopen(request).read()
for name, value in [
    ("PHONE_ENRICH_S3_ENDPOINT", endpoint),
    ("PHONE_ENRICH_S3_KEY_ID", writer[0]),
    ("PHONE_ENRICH_S3_SECRET", writer[1]),
]:
    print(f"export {name}={value}")
