/**
 * Everyday words for benign filler term sets in tests and benchmarks (weather, food, travel,
 * household, study, sport). Hand-written, not taken from any censorship list; whether a filler
 * set is benign is still decided by the simulated censor, never assumed.
 */
import { seededRandom } from './simulate.ts';

export const BENIGN_WORDS: readonly string[] = [
  ...'天气 晴朗 下雨 多云 刮风 温度 早餐 午饭 晚饭 面条 米饭 饺子 包子 豆浆 牛奶 咖啡 绿茶 果汁 苹果 香蕉 橙子 葡萄 西瓜 草莓 蛋糕 面包 鸡蛋 蔬菜 土豆 番茄 黄瓜 白菜 豆腐 米粉 火锅 烧烤 超市 菜市场 商场 书店 图书馆 公园 动物园 博物馆 电影院 体育馆 游泳池 健身房 医院 药店 银行 邮局 车站 机场 地铁 公交车 出租车 自行车 高铁 飞机 轮船 酒店 民宿 旅游 假期 周末 生日 聚会 婚礼 礼物 蛋糕店 花店 咖啡馆 餐厅 厨房 客厅 卧室 阳台 窗户 桌子 椅子 沙发 电视 冰箱 洗衣机 空调 手机 电脑 耳机 充电器 雨伞 帽子 围巾 手套 外套 毛衣 裤子 鞋子 袜子 书包 铅笔 钢笔 笔记本 课本 作业 考试 老师 同学 学校 大学 数学 语文 英语 物理 化学 生物 地理 音乐 美术 体育 足球 篮球 排球 羽毛球 乒乓球 网球 跑步 爬山 钓鱼 游泳 瑜伽 太极 象棋 围棋 扑克 拼图 猫咪 小狗 金鱼 鹦鹉 兔子 熊猫 花园 树叶 月亮 星星 太阳 彩虹 雪花 春天 夏天 秋天 冬天 早上 中午 下午 晚上 明天 昨天 今天 星期一 星期五 快递 包裹 外卖 红包 账单 水电费 房租 工资 会议 报告 表格 邮件 日历 闹钟 钥匙 门铃 楼梯 电梯 停车场 加油站 洗车 修理 搬家 装修 油漆 灯泡 插座 毛巾 牙刷 香皂 洗发水 纸巾 垃圾袋'.split(
    ' ',
  ),
  ...'weather sunny coffee breakfast lunch dinner noodles garden library museum cinema football basketball tennis swimming hiking holiday weekend birthday party gift kitchen sofa laptop headphones umbrella homework teacher school music painting kitten puppy panda rainbow spring summer autumn winter tomorrow parcel invoice meeting calendar'.split(
    ' ',
  ),
];

/** `count` benign term sets of 1–3 distinct words, seeded. */
export function benignTermSets(count: number, seed: number): string[][] {
  const rand = seededRandom(seed);
  const pick = () => BENIGN_WORDS[Math.floor(rand() * BENIGN_WORDS.length)]!;
  const out: string[][] = [];
  const seen = new Set<string>();
  while (out.length < count) {
    const size = 1 + Math.floor(rand() * 3);
    const set = [...new Set(Array.from({ length: size }, pick))];
    const key = [...set].sort().join('+');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(set);
  }
  return out;
}

export interface Article {
  text: string;
  /** Benign words used in the article (none contains or is contained in a component). */
  innocentWords: string[];
}

/**
 * A benign article of about `length` characters (everyday words between Chinese commas and full
 * stops) with each component inserted once at a random word boundary — the shape of a censored
 * WeChat post in Xiong & Knockel's isolation task.
 */
export function benignArticle(components: readonly string[], length: number, seed: number): Article {
  const rand = seededRandom(seed);
  const ok = BENIGN_WORDS.filter((w) => !components.some((c) => w.includes(c) || c.includes(w)));
  const words: string[] = [];
  let chars = 0;
  while (chars < length) {
    const w = ok[Math.floor(rand() * ok.length)]!;
    words.push(w);
    chars += [...w].length + 1;
  }
  const innocentWords = [...new Set(words)];
  for (const c of components) words.splice(Math.floor(rand() * (words.length + 1)), 0, c);
  const text = words.map((w, i) => w + ((i + 1) % 7 === 0 ? '。' : '，')).join('');
  return { text, innocentWords };
}
