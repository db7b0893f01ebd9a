#!/usr/bin/env node
// The cdk-nag gate: load each generated CloudFormation template into a CDK stack with
// cloudformation_include.CfnInclude (the JSON is the source of truth; nothing is rewritten),
// apply the AwsSolutions, PCI DSS 3.2.1 and NIST 800-53 rev 5 packs as Aspects, print every
// finding, and exit 1 on any unsuppressed error or warning (a rule that cannot evaluate
// counts as one): the evidence report calls a rule nothing suppresses *met*, so a warning
// must not pass the gate unread; fix it or suppress it with a reason.
//
//   node nag.js [TEMPLATE.json ...]        default: the templates in ../../build/
//
// Suppressions live in each resource's Metadata.cdk_nag.rules_to_suppress (id, reason and,
// for per-ARN rules, appliesTo), which cdk-nag reads from the included resources as written.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const cdk = require('aws-cdk-lib');
const { CfnInclude } = require('aws-cdk-lib/cloudformation-include');
const nag = require('cdk-nag');

const PACKS = [nag.AwsSolutionsChecks, nag.PCIDSS321Checks, nag.NIST80053R5Checks];

// Collects every outcome of every rule; cdk-nag calls it beside its own annotation logger.
class Collector {
  constructor() {
    this.findings = [];
  }
  record(kind, data, detail) {
    this.findings.push({
      kind,
      level: data.ruleLevel,
      rule: data.ruleId,
      finding: data.findingId,
      resource: data.resource.logicalId ? cdk.Stack.of(data.resource).resolve(data.resource.logicalId) : data.resource.node.path,
      stack: cdk.Stack.of(data.resource).stackName,
      detail,
    });
  }
  onCompliance() {}
  onNotApplicable() {}
  onNonCompliance(data) {
    this.record('finding', data, data.ruleInfo);
  }
  onSuppressed(data) {
    this.record('suppressed', data, data.suppressionReason);
  }
  onError(data) {
    this.record('rule-error', data, data.errorMessage);
  }
  onSuppressedError(data) {
    this.record('suppressed', data, data.errorSuppressionReason);
  }
}

// Every rules_to_suppress entry (and each of its applies_to ids) must match a suppressed finding.
function unusedSuppressions(app, findings) {
  const used = new Set(
    findings.filter((f) => f.kind === 'suppressed').map((f) => `${f.stack}/${f.resource}/${f.rule}/${f.finding}`),
  );
  const usedRule = new Set(
    findings.filter((f) => f.kind === 'suppressed').map((f) => `${f.stack}/${f.resource}/${f.rule}`),
  );
  const unused = [];
  for (const node of app.node.findAll()) {
    if (!cdk.CfnResource.isCfnResource(node)) continue;
    const stack = cdk.Stack.of(node).stackName;
    const resource = cdk.Stack.of(node).resolve(node.logicalId);
    for (const entry of node.getMetadata('cdk_nag')?.rules_to_suppress ?? []) {
      const ids = entry.applies_to ?? entry.appliesTo;
      const missing = ids
        ? ids.filter((id) => typeof id !== 'string' || !used.has(`${stack}/${resource}/${entry.id}/${id}`))
        : usedRule.has(`${stack}/${resource}/${entry.id}`)
          ? []
          : ['(any finding)'];
      for (const id of missing) {
        unused.push({ kind: 'unused', level: 'Error', rule: entry.id, finding: String(id), resource, stack,
          detail: 'suppression matches no finding: remove it or correct the rule id' });
      }
    }
  }
  return unused;
}

function templatesFrom(args) {
  if (args.length) return args;
  const build = path.resolve(__dirname, '..', '..', 'build');
  if (!fs.existsSync(build)) return [];
  // Only CloudFormation templates (build/ may hold other JSON, such as OpenAPI documents).
  return fs
    .readdirSync(build)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => path.join(build, name))
    .filter((file) => 'AWSTemplateFormatVersion' in JSON.parse(fs.readFileSync(file, 'utf8')));
}

function main(args) {
  const files = templatesFrom(args);
  if (!files.length) {
    console.error('cdk-nag: no templates found; run `python generate.py --suffix qa` first');
    return 2;
  }
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-nag-'));
  const collector = new Collector();
  // aws-cdk-lib's own template validation (a WASM schema check, 20 s per template) repeats
  // what cfn-lint already gates; the packs are what this gate is for.
  const app = new cdk.App({ outdir, builtinCloudFormationValidation: false, analyticsReporting: false });
  try {
    for (const file of files) {
      const stack = new cdk.Stack(app, path.basename(file, '.json'));
      new CfnInclude(stack, 'Template', { templateFile: file });
    }
    for (const Pack of PACKS) {
      cdk.Aspects.of(app).add(new Pack({ reports: false, additionalLoggers: [collector] }));
    }
    app.synth();
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
  // A suppression that suppresses nothing is a stale or misspelt claim: it fails the gate too.
  for (const f of unusedSuppressions(app, collector.findings)) collector.findings.push(f);
  const failing = (f) =>
    f.kind === 'unused' ||
    (f.kind !== 'suppressed' && (f.kind === 'rule-error' || f.level === 'Error' || f.level === 'Warning'));
  const order = { 'rule-error': 0, unused: 0, finding: 1, suppressed: 2 };
  const sorted = [...collector.findings].sort(
    (a, b) =>
      order[a.kind] - order[b.kind] ||
      a.stack.localeCompare(b.stack) ||
      a.resource.localeCompare(b.resource) ||
      a.rule.localeCompare(b.rule) ||
      a.finding.localeCompare(b.finding),
  );
  for (const f of sorted) {
    const where = f.finding && f.finding !== 'CdkNagValidationFailure' ? ` [${f.finding}]` : '';
    const mark = f.kind === 'unused' ? 'UNUSED' : failing(f) ? 'FAIL' : f.kind === 'suppressed' ? 'suppressed' : f.level.toLowerCase();
    console.log(`${mark} ${f.stack} ${f.resource} ${f.rule}${where}: ${f.detail}`);
  }
  const count = (pred) => collector.findings.filter(pred).length;
  const errors = count(failing);
  const warnings = count((f) => f.kind === 'finding' && f.level === 'Warning'); // failing too
  const suppressed = count((f) => f.kind === 'suppressed');
  const unused = count((f) => f.kind === 'unused');
  console.log(
    `cdk-nag ${require('cdk-nag/package.json').version} (aws-cdk-lib ${require('aws-cdk-lib/package.json').version}), ` +
      `${files.length} template(s): ${errors - unused} unsuppressed error(s), ${warnings} warning(s), ` +
      `${suppressed} suppressed, ${unused} suppression(s) matching nothing`,
  );
  return errors ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
