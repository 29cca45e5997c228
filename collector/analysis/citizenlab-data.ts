/**
 * The Citizen Lab keyword lists as the analysis simulations use them: each published
 * keyword with its components. Reading and parsing is the planner's (one reader for
 * all four formats, collector/planning/terms.ts); this only reshapes its output.
 */
import { citizenLabPresent, loadCitizenLab as loadFile } from '../planning/testData.ts';

export interface KeywordEntry {
  /** The keyword as published, components joined by `+`, e.g. `六四+刘晓波`. */
  keyword: string;
  /** Its components, e.g. [`六四`, `刘晓波`]. */
  components: string[];
}

export const CITIZENLAB_LISTS = {
  crackdown709: 'wechat-709crackdown.csv',
  coronavirus: 'wechat-coronavirus.csv',
  liuXiaobo: 'wechat-liu-xiaobo.csv',
  oneAppTwoSystems: 'wechat-one-app-two-systems.csv',
} as const;

export type CitizenLabList = keyof typeof CITIZENLAB_LISTS;

export function citizenLabAvailable(): boolean {
  return citizenLabPresent;
}

export function loadCitizenLab(list: CitizenLabList): KeywordEntry[] {
  return loadFile(CITIZENLAB_LISTS[list]).termSets.map((s) => ({
    keyword: s.terms.join('+'),
    components: [...s.terms],
  }));
}
