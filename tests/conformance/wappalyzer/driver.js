// Runs wappalyzer-core (the reference engine) on the items the technographic plugin extracted
// from each corpus page, and compares its detections (names, versions, confidences) with the
// plugin's. Differences listed in differences.json, each with its reason, are deliberate;
// anything else fails.
//
// Usage: node driver.js WAPPALYZER_CORE_DIR TECHNOLOGIES.json CATEGORIES.json DIFFERENCES.json RULES_LABEL
// with the plugin's output (one JSON object per page, from the `conformance` example) on stdin.
'use strict'

const fs = require('fs')
const path = require('path')

const [coreDir, technologiesPath, categoriesPath, differencesPath, label] = process.argv.slice(2)
const Wappalyzer = require(path.resolve(coreDir, 'wappalyzer.js'))

const technologies = JSON.parse(fs.readFileSync(technologiesPath, 'utf8'))
const categories = JSON.parse(fs.readFileSync(categoriesPath, 'utf8'))
Wappalyzer.setCategories(categories)
Wappalyzer.setTechnologies(technologies)
const deliberate = JSON.parse(fs.readFileSync(differencesPath, 'utf8')).filter(
  (d) => d.rules === label
)

// The reference driver's loop: technologies behind `requires` / `requiresCategory` are
// analysed once what they require has been detected, until nothing more is unlocked.
function reference(items) {
  let detections = Wappalyzer.analyze(items)
  let resolved = Wappalyzer.resolve(detections)
  const analysedGroups = new Set()
  const analysedTechs = new Set()
  for (;;) {
    const groups = [
      ...Wappalyzer.requires
        .filter(({ name }) => resolved.some((r) => r.name === name))
        .map(({ name, technologies }) => [`tech:${name}`, technologies]),
      ...Wappalyzer.categoryRequires
        .filter(({ categoryId }) =>
          resolved.some((r) => r.categories.some((c) => c && c.id === categoryId))
        )
        .map(({ categoryId, technologies }) => [`cat:${categoryId}`, technologies]),
    ].filter(([id]) => !analysedGroups.has(id))
    if (!groups.length) break
    const fresh = []
    for (const [id, techs] of groups) {
      analysedGroups.add(id)
      for (const t of techs) {
        if (!analysedTechs.has(t.name)) {
          analysedTechs.add(t.name)
          fresh.push(t)
        }
      }
    }
    detections = detections.concat(Wappalyzer.analyze(items, fresh))
    resolved = Wappalyzer.resolve(detections)
  }
  return resolved
}

function clean(items) {
  // The reference skips absent items; JSON null is absent.
  return Object.fromEntries(Object.entries(items).filter(([, v]) => v !== null))
}

const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.trim())
let failures = 0
let compared = 0
const used = new Set()
for (const line of lines) {
  const { page, items, detections } = JSON.parse(line)
  const ours = new Map(detections.map((d) => [d.name, d]))
  const theirs = new Map(
    reference(clean(items)).map((d) => [
      d.name,
      { name: d.name, confidence: d.confidence, version: d.version || '' },
    ])
  )
  const names = [...new Set([...ours.keys(), ...theirs.keys()])].sort()
  for (const name of names) {
    compared++
    const a = ours.get(name)
    const b = theirs.get(name)
    const problems = []
    if (!a) problems.push(['name', 'missing in the plugin', b])
    else if (!b) problems.push(['name', 'not detected by the reference', a])
    else {
      if (a.version !== b.version) problems.push(['version', `plugin ${JSON.stringify(a.version)}, reference ${JSON.stringify(b.version)}`])
      if (a.confidence !== b.confidence) problems.push(['confidence', `plugin ${a.confidence}, reference ${b.confidence}`])
    }
    for (const [field, what] of problems) {
      const known = deliberate.find((d) => d.page === page && d.name === name && d.field === field)
      if (known) {
        used.add(known)
        console.log(`deliberate: ${label} ${page} ${name} ${field}: ${what} (${known.reason})`)
      } else {
        failures++
        console.log(`DIFFERENCE: ${label} ${page} ${name} ${field}: ${what}`)
      }
    }
  }
}
for (const d of deliberate) {
  if (!used.has(d)) {
    failures++
    console.log(`STALE: ${label} ${d.page} ${d.name} ${d.field} is listed as a deliberate difference but does not occur`)
  }
}
console.log(`${label}: ${lines.length} pages, ${compared} detections compared, ${failures} unexplained differences`)
process.exit(failures ? 1 : 0)
