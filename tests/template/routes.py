"""Prints, as JSON, what the template test (tests/api/template.rs) checks:

- "routes": each HTTP API route of template.yaml as aws-sam-translator turns it into
  CloudFormation (the OpenAPI body of the AWS::ApiGatewayV2::Api), with the function it invokes;
- "openapi": each path of openapi.yaml with its methods;
- "cfn": the whole CloudFormation template (parameters, conditions, resources).

Run with the Python of .tools/venv (scripts/tools.sh pins aws-sam-translator and PyYAML).
"""
import json
import os
import re
import sys

import yaml
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

root = sys.argv[1] if len(sys.argv) > 1 else "."
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

template = yaml_parse(open(os.path.join(root, "template.yaml")).read())
# `sam package` would upload the code and put its S3 address here; the routes do not depend on it.
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://bucket/key.zip"
cfn = transform(template, {"JwtIssuer": "https://issuer.example", "JwtAudience": "aud"}, None)

routes = []
for resource in cfn["Resources"].values():
    if resource["Type"] != "AWS::ApiGatewayV2::Api":
        continue
    for path, methods in resource["Properties"]["Body"]["paths"].items():
        for method, operation in methods.items():
            uri = json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
            function = re.search(r"\$\{(\w+)\.Arn\}", uri).group(1)
            method = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
            routes.append({"method": method, "path": path, "function": function})

spec = yaml.safe_load(open(os.path.join(root, "openapi.yaml")))


openapi = {
    path: [m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")]
    for path, item in spec["paths"].items()
}

json.dump({"routes": routes, "openapi": openapi, "cfn": cfn}, sys.stdout, indent=1, default=str)
