// The static checks over one TypeScript program, built once (incrementally, cached in node_modules/.cache):
// tsc's diagnostics, then ESLint's typed rules on that same program, then gql-tada's check of the
// typed client's documents; and the import graph's rules (dependency-cruiser.config.mjs: no circle, imports
// only downwards in gateway/src). `--types` or `--lint` runs one side alone (`npm run typecheck`,
// `npm run lint`); the import rules run with the lint.
// Plain JavaScript, like the build: it runs before anything is compiled.
import { execFileSync } from 'node:child_process';
import { cruise } from 'dependency-cruiser';
import { ESLint } from 'eslint';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv[2];
const types = only !== '--lint';
const lint = only !== '--types';

const config = ts.getParsedCommandLineOfConfigFile(`${root}tsconfig.json`, { incremental: true, tsBuildInfoFile: `${root}node_modules/.cache/tsc/tsbuildinfo` }, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
    throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
  },
});
const builder = ts.createIncrementalProgram({ rootNames: config.fileNames, options: config.options });
let failed = false;

if (types) {
  const diagnostics = [...builder.getConfigFileParsingDiagnostics(), ...builder.getOptionsDiagnostics(), ...builder.getGlobalDiagnostics(), ...builder.getSyntacticDiagnostics(), ...builder.getSemanticDiagnostics()];
  // noEmit: this writes the .tsbuildinfo only, for the next run.
  builder.emit();
  if (diagnostics.length > 0) {
    failed = true;
    process.stdout.write(ts.formatDiagnosticsWithColorAndContext(diagnostics, { getCanonicalFileName: (name) => name, getCurrentDirectory: () => root, getNewLine: () => '\n' }));
  }
  try {
    execFileSync(`${root}node_modules/.bin/gql-tada`, ['check', '--tsconfig', 'examples/tv-app/tsconfig.gql-tada.json'], { cwd: root, stdio: 'inherit' });
  } catch {
    failed = true;
  }
}

if (lint) {
  // The typed rules read the program built above, not one of their own.
  const eslint = new ESLint({ cwd: root, overrideConfig: { languageOptions: { parserOptions: { projectService: false, programs: [builder.getProgram()] } } } });
  const results = await eslint.lintFiles(['.']);
  const problems = results.reduce((sum, result) => sum + result.errorCount + result.warningCount, 0);
  if (problems > 0) {
    failed = true;
    process.stdout.write(await (await eslint.loadFormatter('stylish')).format(results));
  }
}

if (lint) {
  const { default: rules } = await import(`${root}dependency-cruiser.config.mjs`);
  const { output, exitCode } = await cruise(['gateway', 'services', 'shared', 'scripts', 'test', 'bench', 'examples'], {
    ...rules.options,
    // Unchanged modules are not parsed again (the cache is keyed on their content).
    cache: { folder: `${root}node_modules/.cache/dependency-cruiser`, strategy: 'content' },
    validate: true,
    ruleSet: rules,
    outputType: 'err',
  });
  if (exitCode !== 0) {
    failed = true;
    process.stdout.write(output);
  }
}

process.exitCode = failed ? 1 : 0;
